"""Online top-up through PayPal's Orders API v2 (issue 15), against a stand-in over real HTTP
(tests/fakes/paypal_api.py): the order for the exact amount, the approve link, the capture when
the browser comes back, and webhooks verified by PayPal's verify-webhook-signature. The capture
answer and the PAYMENT.CAPTURE.COMPLETED webhook credit the same payment once between them."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.console.conftest import add_user, http_session
from tests.fakes.paypal_api import CLIENT_SECRET, FakePayPal
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.moneykit import assert_invariants, balance

PASSWORD = "paypal-test-password-1"


def _gateway(make_inproc: Any, paypal_fake: FakePayPal, fake: FakeUpstream) -> Gateway:
    gw: Gateway = make_inproc(fake_config(fake), env=paypal_fake.env())
    paypal_fake.webhook_url = gw.base_url + "/webhooks/paypal"
    return gw


async def _deliver_many(url: str, body: bytes, headers: dict[str, str],
                        n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=n)) as c:
        return await asyncio.gather(*(c.post(url, content=body, headers=headers)
                                      for _ in range(n)))


def test_paypal_order_capture_webhooks_refunds_once(
        make_inproc: Any, paypal_fake: FakePayPal, fake: FakeUpstream) -> None:
    gw = _gateway(make_inproc, paypal_fake, fake)
    aid = add_user(gw, "pp", PASSWORD)
    client, csrf = http_session(gw, "pp", PASSWORD)
    with contextlib.closing(client):
        page = client.get("/console/wallet/topup")
        assert 'value="paypal"' in page.text
        assert paypal_fake.base in page.headers["content-security-policy"]
        r = client.post("/console/wallet/topup", data={"csrf_token": csrf, "amount": "15.25",
                                                       "provider": "paypal"})
        assert r.status_code == 303 and r.headers["location"].startswith(
            paypal_fake.base + "/approve/"), r.text
        oid = r.headers["location"].rsplit("/", 1)[1]
        assert paypal_fake.orders[oid]["amount"] == {"currency_code": "USD", "value": "15.25"}
        [pid] = [p["id"] for p in gw.sql("SELECT id FROM payments WHERE account_id = :a",
                                         a=aid)]
        assert paypal_fake.orders[oid]["custom_id"] == pid
        # Coming back before approving: the capture is refused, nothing is credited.
        early = client.get(f"/console/wallet/topup/done?payment={pid}")
        assert 'data-status="pending"' in early.text and balance(gw, aid) == 0
        back = httpx.post(f"{paypal_fake.base}/approve/{oid}", timeout=15)
        assert back.status_code == 303
        done = client.get(back.headers["location"].removeprefix(gw.base_url))
        assert 'data-status="paid"' in done.text, done.text
        assert balance(gw, aid) == 15_250_000
        # Reloading the page captures nothing twice.
        client.get(back.headers["location"].removeprefix(gw.base_url))
    # The webhook for the same capture: 10 replays and 50 concurrent copies change nothing.
    body, headers = paypal_fake.capture_completed(oid)
    outcomes = [paypal_fake.deliver(body, headers).json()["outcome"] for _ in range(10)]
    assert outcomes == ["duplicate"] * 10
    replies = asyncio.run(_deliver_many(paypal_fake.webhook_url, body, headers, 50))
    assert {r.status_code for r in replies} == {200}
    assert balance(gw, aid) == 15_250_000
    # Refunds by id: each once, a replay is a duplicate.
    rbody, rheaders = paypal_fake.refunded(oid, "5.00", "REF1")
    assert [paypal_fake.deliver(rbody, rheaders).json()["outcome"] for _ in range(3)] == \
        ["credited", "duplicate", "duplicate"]
    assert balance(gw, aid) == 10_250_000
    over = paypal_fake.deliver(*paypal_fake.refunded(oid, "10.26", "REF2"))
    assert over.status_code == 400 and over.json()["error"]["code"] == "refund_exceeds_payment"
    [p] = gw.sql("SELECT status, refunded_micro FROM payments WHERE id = :p", p=pid)
    assert p == {"status": "partially_refunded", "refunded_micro": 5_000_000}
    assert CLIENT_SECRET not in gw.log()
    assert_invariants(gw, aid)


def test_paypal_webhooks_that_do_not_verify_credit_nothing(
        make_inproc: Any, paypal_fake: FakePayPal, fake: FakeUpstream) -> None:
    gw = _gateway(make_inproc, paypal_fake, fake)
    aid = add_user(gw, "pp", PASSWORD)
    client, csrf = http_session(gw, "pp", PASSWORD)
    with contextlib.closing(client):
        r = client.post("/console/wallet/topup", data={"csrf_token": csrf, "amount": "10",
                                                       "provider": "paypal"})
    oid = r.headers["location"].rsplit("/", 1)[1]
    body, headers = paypal_fake.capture_completed(oid)
    stale_body, stale = paypal_fake.capture_completed(oid)
    _, old = paypal_fake.event("PAYMENT.CAPTURE.COMPLETED", {},
                               at=datetime.now(UTC) - timedelta(hours=1))
    stale.update({k: v for k, v in old.items() if k == "paypal-transmission-time"})
    wrong_hook_body, wrong_hook = paypal_fake.event(
        "PAYMENT.CAPTURE.COMPLETED", {"status": "COMPLETED"}, webhook_id="WH-OTHER")
    cases = [
        ("altered body", body.replace(b'"10.00"', b'"99.00"'), headers),
        ("bad signature", body, {**headers, "paypal-transmission-sig": "AAAA"}),
        ("stale transmission", stale_body, stale),
        ("another webhook's signature", wrong_hook_body, wrong_hook),
        ("no headers", body, {"content-type": "application/json"}),
        ("garbage time", body, {**headers, "paypal-transmission-time": "\x7fnot a time"}),
        ("not JSON", b"\xff\xfe{", headers),
    ]
    for what, b, h in cases:
        r = httpx.post(paypal_fake.webhook_url, content=b, headers=h, timeout=15)
        assert r.status_code == 400, (what, r.status_code, r.text)
    assert balance(gw, aid) == 0
    # The genuine event of an order never captured: credited by the webhook alone.
    assert paypal_fake.deliver(body, headers).json()["outcome"] == "credited"
    assert balance(gw, aid) == 10_000_000
    assert_invariants(gw, aid)


def test_paypal_checkout_ending_unpaid_expires_and_credits_nothing(
        make_inproc: Any, paypal_fake: FakePayPal, fake: FakeUpstream) -> None:
    """A capture denied or declined, or an approval PayPal reverses (not captured in time),
    turns the pending payment ``expired``: no money moves, replays change nothing, a payment
    already paid is untouched, and money that still arrives later is credited."""
    gw = _gateway(make_inproc, paypal_fake, fake)
    aid = add_user(gw, "pp", PASSWORD)
    client, csrf = http_session(gw, "pp", PASSWORD)
    orders = []
    with contextlib.closing(client):
        for amount in ("10", "11", "12", "13"):
            r = client.post("/console/wallet/topup", data={
                "csrf_token": csrf, "amount": amount, "provider": "paypal"})
            assert r.status_code == 303, r.text
            orders.append(r.headers["location"].rsplit("/", 1)[1])
    denied, declined, reversed_, paid = orders

    def status(oid: str) -> str:
        [row] = gw.sql("SELECT status FROM payments WHERE checkout_id = :o", o=oid)
        return str(row["status"])

    def capture_event(kind: str, oid: str) -> tuple[bytes, dict[str, str]]:
        order = paypal_fake.orders[oid]
        return paypal_fake.event(kind, {
            "id": "CAP-" + oid, "status": kind.rsplit(".", 1)[1], "amount": order["amount"],
            "custom_id": order["custom_id"],
            "supplementary_data": {"related_ids": {"order_id": oid}}})

    body, headers = capture_event("PAYMENT.CAPTURE.DENIED", denied)
    replies = asyncio.run(_deliver_many(paypal_fake.webhook_url, body, headers, 10))
    assert {r.status_code for r in replies} == {200}
    assert sorted(r.json()["outcome"] for r in replies) == ["expired"] + ["nothing_to_do"] * 9
    assert paypal_fake.deliver(*capture_event("PAYMENT.CAPTURE.DECLINED", declined)
                               ).json()["outcome"] == "expired"
    order = paypal_fake.orders[reversed_]
    rev = paypal_fake.event("CHECKOUT.PAYMENT-APPROVAL.REVERSED", {
        "order_id": reversed_, "purchase_units": [{"custom_id": order["custom_id"]}]})
    assert paypal_fake.deliver(*rev).json()["outcome"] == "expired"
    assert [status(o) for o in (denied, declined, reversed_, paid)] == \
        ["expired", "expired", "expired", "pending"]
    assert balance(gw, aid) == 0
    # A payment already credited is not expired by a late denial of another capture.
    assert paypal_fake.deliver(*paypal_fake.capture_completed(paid)).json()["outcome"] == \
        "credited"
    assert paypal_fake.deliver(*capture_event("PAYMENT.CAPTURE.DENIED", paid)
                               ).json()["outcome"] == "nothing_to_do"
    assert status(paid) == "paid" and balance(gw, aid) == 13_000_000
    # Money that arrives after all is credited, and the payment is paid.
    assert paypal_fake.deliver(*paypal_fake.capture_completed(denied)).json()["outcome"] == \
        "credited"
    assert status(denied) == "paid" and balance(gw, aid) == 23_000_000
    assert_invariants(gw, aid)

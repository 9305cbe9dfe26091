"""Online top-up through Stripe (issue 15): the ``stripe`` library against a stand-in of the
API over real HTTP (tests/fakes/stripe_api.py), webhooks signed with Stripe's scheme. Credited
once whatever the replays and concurrency, refused when the signature, the timestamp, the body,
the amount or the currency is wrong; refunds and disputes are negative adjustments that stop
spending; on SQLite, PostgreSQL and PostgreSQL+Redis across two replicas."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from typing import Any

import httpx
import openai
import pytest

from tests.console.conftest import add_user, http_session
from tests.fakes.stripe_api import WEBHOOK_SECRET, FakeStripe, sign
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.moneykit import assert_invariants, balance
from tests.services import REDIS_URL, pg_url, redis_prefix  # noqa: F401  (fixtures)

PASSWORD = "pay-test-password-1"


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def backend_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    env = {"SMARTOKEN_DATABASE_URL": request.getfixturevalue("pg_url")}
    if request.param == "redis":
        env.update({"SMARTOKEN_REDIS_URL": REDIS_URL,
                    "SMARTOKEN_REDIS_PREFIX": request.getfixturevalue("redis_prefix")})
    return env


def _gateway(make_inproc: Any, stripe_fake: FakeStripe, fake: FakeUpstream,
             env: dict[str, str] | None = None) -> Gateway:
    gw: Gateway = make_inproc(fake_config(fake), env={**stripe_fake.env(), **(env or {})})
    stripe_fake.webhook_url = gw.base_url + "/webhooks/stripe"
    return gw


def start_topup(gw: Gateway, name: str, amount: str = "10") -> tuple[int, str]:
    """Sign in as ``name`` (created) and start a top-up: (account id, checkout session id)."""
    aid = add_user(gw, name, PASSWORD)
    client, csrf = http_session(gw, name, PASSWORD)
    try:
        r = client.post("/console/wallet/topup", data={"csrf_token": csrf, "amount": amount,
                                                       "provider": "stripe"})
    finally:
        client.close()
    assert r.status_code == 303, r.text
    return aid, r.headers["location"].rsplit("/", 1)[1]


def events(gw: Gateway, aid: int) -> list[dict[str, Any]]:
    return gw.sql("SELECT kind, amount_micro FROM payment_events WHERE account_id = :a "
                  "ORDER BY id", a=aid)


async def _deliver_many(urls: list[str], payload: bytes, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(*(
            client.post(urls[i % len(urls)], content=payload,
                        headers={"stripe-signature": sign(payload),
                                 "content-type": "application/json"}) for i in range(n)))


def test_paid_is_credited_once_whatever_the_replays_and_concurrency(
        backend_env: dict[str, str], make_inproc: Any, stripe_fake: FakeStripe,
        fake: FakeUpstream) -> None:
    gw = _gateway(make_inproc, stripe_fake, fake, backend_env)
    aid, sid = start_topup(gw, "payer", "12.34")
    session = stripe_fake.sessions[sid]
    assert session["amount_total"] == 1234 and session["currency"] == "usd"
    assert session["metadata"]["account_id"] == str(aid)
    assert session["client_reference_id"] == str(aid)
    [pending] = gw.sql("SELECT status, amount_micro FROM payments WHERE account_id = :a", a=aid)
    assert pending == {"status": "pending", "amount_micro": 12_340_000}
    assert balance(gw, aid) == 0  # starting a checkout credits nothing
    payload = stripe_fake.completed(sid)
    outcomes = [stripe_fake.deliver(payload) for _ in range(10)]
    assert [r.status_code for r in outcomes] == [200] * 10
    assert [r.json()["outcome"] for r in outcomes] == ["credited"] + ["duplicate"] * 9
    # The same payment's event under another event id (Stripe re-sends with new ids too).
    again = stripe_fake.completed(sid)
    assert stripe_fake.deliver(again).json()["outcome"] == "duplicate"
    assert balance(gw, aid) == 12_340_000
    # A second payment, its event delivered 50 times at once.
    _, sid2 = start_topup(gw, "payer", "5")
    replies = asyncio.run(_deliver_many([stripe_fake.webhook_url],
                                        stripe_fake.completed(sid2), 50))
    assert sorted({r.status_code for r in replies}) == [200]
    assert [r.json()["outcome"] for r in replies].count("credited") == 1
    assert balance(gw, aid) == 17_340_000
    assert events(gw, aid) == [{"kind": "paid", "amount_micro": 12_340_000},
                               {"kind": "paid", "amount_micro": 5_000_000}]
    assert_invariants(gw, aid)
    # The credit is spendable at once (the reserver's view moved with it).
    key = gw.key("payer", admin=False)
    assert gw.client(key).chat.completions.create(
        model="kimi-k2", messages=[{"role": "user", "content": "hi"}], max_tokens=10).id


def test_bad_signatures_stale_timestamps_and_altered_bodies_credit_nothing(
        make_inproc: Any, stripe_fake: FakeStripe, fake: FakeUpstream) -> None:
    gw = _gateway(make_inproc, stripe_fake, fake)
    aid, sid = start_topup(gw, "payer")
    payload = stripe_fake.completed(sid)
    now = int(time.time())
    altered = payload.replace(b'"amount_total": 1000', b'"amount_total": 100000')
    assert altered != payload
    cases: dict[str, tuple[bytes, str | bytes]] = {
        "wrong secret": (payload, sign(payload, "whsec_wrong")),
        "stale timestamp (a replay)": (payload, sign(payload, t=now - 3600)),
        "body altered after signing": (altered, sign(payload)),
        "no v1 signature": (payload, f"t={now},v0=abc"),
        "garbage header": (payload, b"t=\xff\xfe,v1=zz"),
        "empty header": (payload, ""),
        "signature of another timestamp": (payload, sign(payload).replace(
            f"t={now}", f"t={now - 1}")),
    }
    for what, (body, header) in cases.items():
        r = httpx.post(stripe_fake.webhook_url, content=body, timeout=15,
                       headers={"stripe-signature": header} if header else {})
        assert r.status_code == 400, (what, r.status_code, r.text)
        assert r.json()["error"]["code"] == "bad_signature", what
        assert WEBHOOK_SECRET not in r.text
    assert balance(gw, aid) == 0 and events(gw, aid) == []
    assert stripe_fake.deliver(payload).json()["outcome"] == "credited"  # the real one does
    assert WEBHOOK_SECRET not in gw.log() and "sk_test_fake" not in gw.log()
    assert_invariants(gw, aid)


def test_amount_currency_account_mismatches_and_unknown_sessions_are_refused(
        make_inproc: Any, stripe_fake: FakeStripe, fake: FakeUpstream) -> None:
    gw = _gateway(make_inproc, stripe_fake, fake)
    aid, sid = start_topup(gw, "payer", "10")
    other = add_user(gw, "other", PASSWORD)
    refused = {
        "amount_mismatch": stripe_fake.completed(sid, amount_total=999),
        "currency_mismatch": stripe_fake.completed(sid, currency="eur"),
        "account_mismatch": stripe_fake.completed(sid, client_reference_id=str(other)),
    }
    for code, payload in refused.items():
        r = stripe_fake.deliver(payload)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (code, r.text)
    unknown = stripe_fake.completed(sid, id="cs_test_unknown", metadata={})
    assert stripe_fake.deliver(unknown).json()["outcome"] == "unknown_payment"
    unpaid = stripe_fake.completed(sid, payment_status="unpaid")
    assert stripe_fake.deliver(unpaid).json()["outcome"] == "ignored"
    other_type = stripe_fake.event("customer.created", {"id": "cus_1"})
    assert stripe_fake.deliver(other_type).json()["outcome"] == "ignored"
    # A refund before the payment was credited: refused (Stripe retries it later) when the
    # charge names our payment (the PaymentIntent's metadata); unknown when it names nothing.
    assert stripe_fake.deliver(stripe_fake.refunded(sid, 500)).json()["outcome"] == \
        "unknown_payment"
    early = stripe_fake.deliver(stripe_fake.refunded(
        sid, 500, metadata=stripe_fake.sessions[sid]["metadata"]))
    assert early.status_code == 400 and early.json()["error"]["code"] == "payment_not_paid"
    assert balance(gw, aid) == 0 and balance(gw, other) == 0
    for body in (b"", b"\x00\xff\xfe", b"[]", b"{}", b"null", b'{"data": 5}',
                 b'{"type": "checkout.session.completed", "data": {"object": []}}',
                 b'{"type": "charge.refunded", "data": {"object": {"amount_refunded": 1e999}}}',
                 json.dumps({"type": "checkout.session.completed", "data": {"object": {
                     "mode": "payment", "payment_status": "paid", "amount_total": 10**30,
                     "currency": "usd", "metadata": {"payment_id": 5}}}}).encode()):
        r = stripe_fake.deliver(body)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
    huge = b"{" + b" " * (300 * 1024) + b"}"
    r = stripe_fake.deliver(huge)
    assert r.status_code == 413, r.text
    assert balance(gw, aid) == 0
    assert stripe_fake.deliver(stripe_fake.completed(sid)).json()["outcome"] == "credited"
    assert_invariants(gw, aid)


def test_refunds_and_disputes_are_negative_adjustments_once_and_stop_spending(
        backend_env: dict[str, str], make_inproc: Any, stripe_fake: FakeStripe,
        fake: FakeUpstream) -> None:
    gw = _gateway(make_inproc, stripe_fake, fake, backend_env)
    aid, sid = start_topup(gw, "payer", "10")
    assert stripe_fake.deliver(stripe_fake.completed(sid)).json()["outcome"] == "credited"
    key = gw.key("payer", admin=False)
    client = gw.client(key)
    client.chat.completions.create(model="kimi-k2", max_tokens=10,
                                   messages=[{"role": "user", "content": "hi"}])
    gw.wait_usage(1, account_id=aid)
    # Partial refund $4, replayed; then the cumulative $10 (a full refund) delivered twice,
    # then an older total of $7 arriving late (out of order): -$10 in all.
    partial = stripe_fake.refunded(sid, 400)
    assert [stripe_fake.deliver(partial).json()["outcome"] for _ in range(3)] == \
        ["credited", "duplicate", "duplicate"]
    full = stripe_fake.refunded(sid, 1000)
    assert stripe_fake.deliver(full).json()["outcome"] == "credited"
    assert stripe_fake.deliver(full).json()["outcome"] == "duplicate"
    assert stripe_fake.deliver(partial).json()["outcome"] == "duplicate"
    late = stripe_fake.refunded(sid, 700)
    assert stripe_fake.deliver(late).json()["outcome"] == "nothing_to_do"
    too_much = stripe_fake.deliver(stripe_fake.refunded(sid, 1001))
    assert too_much.status_code == 400
    assert [e["amount_micro"] for e in events(gw, aid)] == [10_000_000, -4_000_000, -6_000_000]
    spent = assert_invariants(gw, aid)["spent"]
    assert spent > 0 and balance(gw, aid) == -spent  # below zero: spending stops
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="kimi-k2", max_tokens=10,
                                       messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code in (402, 429), refused.value
    # A second payment, disputed (twice delivered), then the dispute is won.
    _, sid2 = start_topup(gw, "payer", "20")
    stripe_fake.deliver(stripe_fake.completed(sid2))
    before = balance(gw, aid)
    opened = stripe_fake.dispute(sid2, "dp_1", 2000)
    assert [stripe_fake.deliver(opened).json()["outcome"] for _ in range(2)] == \
        ["credited", "duplicate"]
    assert balance(gw, aid) == before - 20_000_000
    lost_elsewhere = stripe_fake.dispute(sid2, "dp_1", 2000, closed="lost")
    assert stripe_fake.deliver(lost_elsewhere).json()["outcome"] == "ignored"
    won = stripe_fake.dispute(sid2, "dp_1", 2000, closed="won")
    assert [stripe_fake.deliver(won).json()["outcome"] for _ in range(2)] == \
        ["credited", "duplicate"]
    assert balance(gw, aid) == before
    [p] = gw.sql("SELECT status FROM payments WHERE checkout_id = :c", c=sid2)
    assert p["status"] == "paid"
    assert_invariants(gw, aid)


def test_two_replicas_on_postgresql_and_redis_credit_once(
        pg_url: str, redis_prefix: str,  # noqa: F811
        make_inproc: Any, stripe_fake: FakeStripe, fake: FakeUpstream) -> None:
    env = {"SMARTOKEN_DATABASE_URL": pg_url, "SMARTOKEN_REDIS_URL": REDIS_URL,
           "SMARTOKEN_REDIS_PREFIX": redis_prefix}
    a = _gateway(make_inproc, stripe_fake, fake, env)
    b: Gateway = make_inproc(fake_config(fake), env={**stripe_fake.env(), **env})
    aid, sid = start_topup(a, "payer", "7.50")
    urls = [a.base_url + "/webhooks/stripe", b.base_url + "/webhooks/stripe"]
    replies = asyncio.run(_deliver_many(urls, stripe_fake.completed(sid), 50))
    assert sorted({r.status_code for r in replies}) == [200]
    assert [r.json()["outcome"] for r in replies].count("credited") == 1
    assert balance(a, aid) == 7_500_000
    key = a.key("payer", admin=False)
    for gw in (a, b):  # both replicas see the credit (the shared balance was reloaded)
        deadline = time.monotonic() + 5
        while True:
            try:
                gw.client(key).chat.completions.create(
                    model="kimi-k2", max_tokens=10, messages=[{"role": "user", "content": "x"}])
                break
            except openai.APIStatusError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    assert_invariants(a, aid)


def test_console_pages_pending_credited_receipts_and_limits(
        make_inproc: Any, stripe_fake: FakeStripe, fake: FakeUpstream) -> None:
    plain: Gateway = make_inproc(fake_config(fake))  # no provider configured
    add_user(plain, "nopay", PASSWORD)
    client, csrf = http_session(plain, "nopay", PASSWORD)
    with contextlib.closing(client):
        page = client.get("/console/wallet/topup")
        assert page.status_code == 200 and 'id="topup-unavailable"' in page.text
        assert "ask an administrator" in page.text
        r = client.post("/console/wallet/topup", data={"csrf_token": csrf, "amount": "10",
                                                       "provider": "stripe"})
        assert r.status_code == 400 and "not configured" in r.text
        assert httpx.post(plain.base_url + "/webhooks/stripe", content=b"{}").json()[
            "error"]["code"] == "provider_not_configured"
    gw = _gateway(make_inproc, stripe_fake, fake)
    aid, sid = start_topup(gw, "payer", "10")
    other, osid = start_topup(gw, "other", "10")
    client, csrf = http_session(gw, "payer", PASSWORD)
    with contextlib.closing(client):
        page = client.get("/console/wallet/topup")
        assert 'value="stripe"' in page.text and "$25.00" in page.text
        assert f"form-action 'self' {stripe_fake.base}" in page.headers["content-security-policy"]
        for amount in ("4.99", "1000.01", "10.001", "-5", "1e3", "\x00", "9" * 50, ""):
            r = client.post("/console/wallet/topup", data={"csrf_token": csrf,
                                                           "amount": amount,
                                                           "provider": "stripe"})
            assert r.status_code == 400, (amount, r.status_code)
        r = client.post("/console/wallet/topup", data={"amount": "10", "provider": "stripe"})
        assert r.status_code == 403  # no CSRF token
        [pid] = [p["id"] for p in gw.sql("SELECT id FROM payments WHERE checkout_id = :c",
                                         c=sid)]
        done = client.get(f"/console/wallet/topup/done?payment={pid}")
        assert 'data-status="pending"' in done.text and "Pending until" in done.text
        assert balance(gw, aid) == 0  # coming back credits nothing
        [opid] = [p["id"] for p in gw.sql("SELECT id FROM payments WHERE checkout_id = :c",
                                          c=osid)]
        assert client.get(f"/console/wallet/topup/done?payment={opid}").status_code == 404
        cancelled = client.get(f"/console/wallet/topup/cancelled?payment={pid}")
        assert "nothing was charged" in cancelled.text
        stripe_fake.deliver(stripe_fake.completed(sid))
        stripe_fake.deliver(stripe_fake.completed(osid))
        stripe_fake.deliver(stripe_fake.refunded(sid, 250))
        done = client.get(f"/console/wallet/topup/done?payment={pid}")
        assert 'data-status="partially_refunded"' in done.text
        wallet = client.get("/console/wallet")
        numbers = [int(n) for n in re.findall(
            r'href="/console/wallet/receipts/(\d+)"', wallet.text)]
        assert len(numbers) == 2, wallet.text
        mine = client.get(f"/console/wallet/receipts/{max(numbers)}")
        assert mine.status_code == 200 and "Refund receipt" in mine.text
        assert "-$2.50" in mine.text and "payer" in mine.text
        top = client.get(f"/console/wallet/receipts/{min(numbers)}")
        assert "Top-up receipt" in top.text and "$10.00" in top.text and pid in top.text
        theirs = gw.sql("SELECT id FROM payment_events WHERE account_id = :a", a=other)
        assert client.get(f"/console/wallet/receipts/{theirs[0]['id']}").status_code == 404
        zh = client.get(f"/console/wallet/receipts/{min(numbers)}",
                        headers={"accept-language": "zh-CN"})
        assert "充值收据" in zh.text
    assert_invariants(gw, aid)
    assert_invariants(gw, other)


def test_an_expired_checkout_ends_pending_and_credits_nothing(
        make_inproc: Any, stripe_fake: FakeStripe, fake: FakeUpstream) -> None:
    gw = _gateway(make_inproc, stripe_fake, fake)
    aid, sid = start_topup(gw, "payer", "10")
    replies = asyncio.run(_deliver_many([stripe_fake.webhook_url], stripe_fake.expired(sid), 10))
    assert sorted(r.json()["outcome"] for r in replies) == ["expired"] + ["nothing_to_do"] * 9
    [p] = gw.sql("SELECT id, status FROM payments WHERE account_id = :a", a=aid)
    assert p["status"] == "expired" and balance(gw, aid) == 0
    client, _ = http_session(gw, "payer", PASSWORD)
    with contextlib.closing(client):
        done = client.get(f"/console/wallet/topup/done?payment={p['id']}")
        assert 'data-status="expired"' in done.text
    # A paid session cannot expire: the expiry of a credited payment changes nothing.
    _, sid2 = start_topup(gw, "payer", "5")
    assert stripe_fake.deliver(stripe_fake.completed(sid2)).json()["outcome"] == "credited"
    assert stripe_fake.deliver(stripe_fake.expired(sid2)).json()["outcome"] == "nothing_to_do"
    statuses = sorted(r["status"] for r in gw.sql(
        "SELECT status FROM payments WHERE account_id = :a", a=aid))
    assert statuses == ["expired", "paid"] and balance(gw, aid) == 5_000_000
    # Money that still arrives for the expired one (a delayed method) is credited: paid.
    assert stripe_fake.deliver(stripe_fake.completed(sid)).json()["outcome"] == "credited"
    assert gw.sql("SELECT status FROM payments WHERE id = :p", p=p["id"])[0]["status"] == "paid"
    assert balance(gw, aid) == 15_000_000
    assert_invariants(gw, aid)

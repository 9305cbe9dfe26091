"""Issue 12 item 15 (part): exact USD input, a readable 401 hint, and the console's admin credit
form held to the admin API's rule (a wallet never below zero)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.console.conftest import add_user, http_session
from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config
from tests.inproc import InProcessGateway
from tests.moneykit import MASTER, AdminAPI, assert_ledger_balances


@pytest.fixture
def gw(fake: FakeUpstream, make_inproc: Callable[..., InProcessGateway]) -> InProcessGateway:
    return make_inproc(fake_config(fake), env={"SMARTOKEN_MASTER_KEY": MASTER})


def _money(gw: InProcessGateway) -> object:
    return gw.sql("SELECT * FROM wallets ORDER BY 1"), \
        gw.sql("SELECT * FROM wallet_transactions ORDER BY 1"), \
        gw.sql("SELECT * FROM api_keys ORDER BY 1")


def test_usd_amounts_are_plain_decimals(gw: InProcessGateway) -> None:
    master = AdminAPI(gw)
    aid = master.account("alice", credit="1")
    before = _money(gw)
    for amount in ("1e3", "1E3", "1_000", "Infinity", " 1e3 ", "١٠٠٠"):
        r = master.post(f"/admin/accounts/{aid}/wallet/transactions",
                        {"kind": "credit", "amount": amount, "reason": "typo"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_amount", r.text
        r = master.post("/admin/keys", {"account_id": aid, "daily_budget": amount})
        assert r.status_code == 400, r.text
    assert _money(gw) == before
    master.credit(aid, "1000")  # the plain spelling is accepted


def test_the_401_hint_is_not_garbled_by_the_redactor(gw: InProcessGateway) -> None:
    r = httpx.post(gw.base_url + "/v1/chat/completions", json={})
    assert r.status_code == 401
    assert r.json()["error"]["message"] == \
        "Missing API key: send 'Authorization: Bearer sk-st-...'."
    r = httpx.post(gw.base_url + "/v1/chat/completions", json={},
                   headers={"authorization": "Token abc"})
    assert r.json()["error"]["message"] == \
        "Malformed Authorization header: expected 'Bearer <key>'."
    # A credential the client sends is still not echoed.
    r = httpx.get(gw.base_url + "/admin/accounts", headers={"authorization": "Bearer "
                                                            "sk-st-" + "Q" * 40})
    assert r.status_code == 401 and "Q" * 20 not in r.text


def test_console_credit_form_cannot_take_a_wallet_below_zero(gw: InProcessGateway) -> None:
    add_user(gw, "root", "root-password-1", role="admin")
    bob = add_user(gw, "bob", "bob-password-1", credit="5")
    client, csrf = http_session(gw, "root", "root-password-1")
    before = _money(gw)
    for amount, kind in (("-5.000001", "adjustment"), ("-1000", "adjustment"),
                         ("-1", "credit"), ("1e3", "credit"), ("99999999999", "credit")):
        r = client.post("/console/admin/credit", data={
            "account_id": str(bob), "amount": amount, "kind": kind, "reason": "oops",
            "csrf_token": csrf})
        assert r.status_code == 400, (amount, r.status_code)
    for account_id in ("9223372036854775808", "-1", "0"):
        r = client.post("/console/admin/credit", data={
            "account_id": account_id, "amount": "1", "csrf_token": csrf})
        assert r.status_code < 500, (account_id, r.status_code)
    assert _money(gw) == before
    r = client.post("/console/admin/credit", data={
        "account_id": str(bob), "amount": "-5", "kind": "adjustment", "reason": "refund",
        "csrf_token": csrf})
    assert r.status_code == 303
    [wallet] = gw.sql("SELECT balance_micro FROM wallets WHERE account_id = :a", a=bob)
    assert wallet["balance_micro"] == 0
    assert_ledger_balances(gw, bob)


@pytest.mark.parametrize("error", ["pool", "connection", "constraint"])
def test_a_database_that_does_not_answer_is_a_503_not_a_500(
        gw: InProcessGateway, monkeypatch: pytest.MonkeyPatch, error: str) -> None:
    """1000 concurrent requests on PostgreSQL exhausted the pool in key authentication and got
    500 internal_error; a pool timeout or a lost connection is the database being unavailable
    (503, Retry-After), while a statement the database refuses stays a 500."""
    from sqlalchemy import exc as sa_errors

    from smartoken.auth.keys import KeyCache

    raised: BaseException = {
        "pool": sa_errors.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
        "connection": sa_errors.OperationalError("SELECT 1", {}, OSError("reset")),
        "constraint": sa_errors.IntegrityError("INSERT", {}, Exception("duplicate key")),
    }[error]
    key = gw.key(credit="1")

    async def down(self: KeyCache, authorization: str | None) -> None:
        raise raised

    monkeypatch.setattr(KeyCache, "authenticate", down)
    r = httpx.post(gw.base_url + "/v1/chat/completions", timeout=15,
                   headers={"authorization": f"Bearer {key}"},
                   json={"model": "kimi-k2", "messages": [{"role": "user", "content": "hi"}]})
    if error == "constraint":
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        return
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "database_unavailable"
    assert r.headers["retry-after"] == "1"

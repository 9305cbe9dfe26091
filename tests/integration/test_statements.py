"""Issue 15: monthly statements equal the ledger. Transactions are placed on both sides of a
month boundary that only exists in the gateway's time zone (Asia/Shanghai, UTC+8): the
statement's months follow that zone, the closing balance of one month is the opening of the
next, every line is the sum of its transactions, the per-model usage adds up to the usage line,
the last closing balance is the wallet's, and the CSV says the same as the JSON."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from smartoken.store import repo
from smartoken.store.schema import wallet_transactions
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.moneykit import MASTER, MESSAGES, AdminAPI, assert_invariants, micro
from tests.services import pg_url  # noqa: F401  (fixture)


@pytest.fixture(params=["sqlite", "pg"])
def db_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    return {"SMARTOKEN_DATABASE_URL": str(request.getfixturevalue("pg_url"))}


def _place(gw: Gateway, txn_id: int, when: str) -> None:
    """Move a transaction to ``when`` (UTC), as if it had been written then."""
    at = datetime.fromisoformat(when).replace(tzinfo=UTC)

    async def go(engine: Any) -> None:
        async with engine.begin() as conn:
            await conn.execute(update(wallet_transactions)
                               .where(wallet_transactions.c.id == txn_id).values(created_at=at))

    gw.db(go)


def _add(gw: Gateway, account_id: int, amount: int, request_id: str, kind: str = "credit",
         origin: str = "") -> int:
    async def go(engine: Any) -> int:
        async with engine.begin() as conn:
            return await repo.add_transaction(conn, account_id, kind, amount,
                                              request_id=request_id, reason=request_id,
                                              origin=origin)

    return gw.db(go)


def _lines(st: dict[str, Any]) -> dict[str, int]:
    return {x["line"]: micro(x["amount"]) for x in st["lines"]}


def test_statements_follow_the_time_zone_and_equal_the_ledger(
        fake: FakeUpstream, make_inproc: Any, db_env: dict[str, str]) -> None:
    env = {"SMARTOKEN_MASTER_KEY": MASTER, "SMARTOKEN_TIMEZONE": "Asia/Shanghai", **db_env}
    gw = make_inproc(fake_config(fake), env=env)
    admin = AdminAPI(gw)
    aid, other = admin.account("acme"), admin.account("other", credit="7")
    key, _ = admin.key(aid)
    me = AdminAPI(gw, key)
    ten = admin.credit(aid, "10")["id"]  # Oct 31, 23:30 in Shanghai: October
    five = admin.credit(aid, "5")["id"]  # Nov 1, 00:30 in Shanghai: November (UTC: October)
    _place(gw, ten, "2026-10-31 15:30:00.000000")
    _place(gw, five, "2026-10-31 16:30:00.000000")
    [code] = admin.ok(admin.post("/admin/redemption-codes", {"count": 1, "amount": "2"}),
                      201)["data"]
    _place(gw, me.ok(me.post("/account/redeem", {"code": code["code"]}))["transaction_id"],
           "2026-11-15 04:00:00.000000")
    _place(gw, _add(gw, aid, 1_500_000, f"trial:{aid}", origin="trial"),
           "2026-11-02 01:00:00.000000")
    _place(gw, _add(gw, aid, 20_000_000, "stripe:cs_test_1"), "2026-11-03 01:00:00.000000")
    _place(gw, admin.credit(aid, "-1.25", kind="adjustment")["id"],
           "2026-11-10 01:00:00.000000")
    _place(gw, admin.credit(aid, "0.5", kind="refund")["id"], "2026-11-11 01:00:00.000000")
    for _ in range(3):
        gw.client(key).chat.completions.create(model="kimi-k2", messages=MESSAGES,
                                               max_tokens=50)
    gw.wait_usage(3, account_id=aid)
    debits = gw.sql("SELECT id, amount_micro FROM wallet_transactions WHERE account_id = :a "
                    "AND kind = 'debit' ORDER BY id", a=aid)
    assert len(debits) == 3
    _place(gw, debits[0]["id"], "2026-11-20 01:00:00.000000")
    _place(gw, debits[1]["id"], "2026-11-30 15:59:59.999999")  # Nov 30, 23:59:59 local
    _place(gw, debits[2]["id"], "2026-11-30 16:00:00.000000")  # Dec 1, 00:00 local
    cost = [-int(d["amount_micro"]) for d in debits]

    oct_, nov, dec = (me.ok(me.get(f"/account/statements/2026-{m}")) for m in ("10", "11",
                                                                                 "12"))
    assert oct_["timezone"] == "Asia/Shanghai"
    assert oct_["period_start"] == "2026-10-01T00:00:00+08:00" or \
        oct_["period_start"].startswith("2026-09-30T16:00:00")
    assert micro(oct_["opening_balance"]) == 0
    assert _lines(oct_)["credit_admin"] == 10_000_000
    assert micro(oct_["closing_balance"]) == 10_000_000
    assert oct_["closing_balance"] == nov["opening_balance"]
    assert nov["closing_balance"] == dec["opening_balance"]
    lines = _lines(nov)
    assert lines == {"credit_topup": 20_000_000, "credit_code": 2_000_000,
                     "credit_trial": 1_500_000, "credit_admin": 5_000_000,
                     "usage": -(cost[0] + cost[1]), "refund": 500_000,
                     "adjustment": -1_250_000}
    assert micro(nov["closing_balance"]) == micro(nov["opening_balance"]) + sum(lines.values())
    [model] = nov["models"]
    assert model["model"] == "kimi-k2" and model["requests"] == 2
    assert micro(model["cost"]) == cost[0] + cost[1] and model["prompt_tokens"] > 0
    assert _lines(dec)["usage"] == -cost[2]
    [w] = gw.sql("SELECT balance_micro FROM wallets WHERE account_id = :a", a=aid)
    assert micro(dec["closing_balance"]) == w["balance_micro"]  # nothing after December
    # The CSV says the same.
    r = me.get("/account/statements/2026-11.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    summary = {x["item"]: micro(x["amount_usd"]) for x in rows if x["section"] == "summary"}
    assert summary == {**lines, "opening_balance": micro(nov["opening_balance"]),
                       "closing_balance": micro(nov["closing_balance"])}
    assert [x["item"] for x in rows if x["section"] == "model"] == ["kimi-k2"]
    assert len([x for x in rows if x["section"] == "transaction"]) == 6
    # In UTC the 5 dollars fall in October: the zone is what decides.
    utc = make_inproc(fake_config(fake), env={**env, "SMARTOKEN_TIMEZONE": "UTC",
                                              "SMARTOKEN_DATABASE_URL": gw.database_url})
    in_utc = AdminAPI(utc, key).ok(AdminAPI(utc, key).get("/account/statements/2026-10"))
    assert _lines(in_utc)["credit_admin"] == 15_000_000
    # Admins read any account's statement; another account cannot, and sees only its own.
    assert admin.ok(admin.get(f"/admin/accounts/{aid}/statements/2026-11")) == nov
    assert admin.get(f"/admin/accounts/{aid}/statements/2026-11.csv").text == r.text
    okey, _ = admin.key(other)
    them = AdminAPI(gw, okey)
    assert them.get(f"/admin/accounts/{aid}/statements/2026-11").status_code == 403
    theirs = them.ok(them.get("/account/statements/2026-12"))
    assert theirs["account_id"] == other and micro(theirs["closing_balance"]) == 7_000_000
    for bad in ("2026-13", "2026-00", "26-11", "2026-1", "2026-11-01", "1999-12", "99999-01",
                "2026-11%00", "x" * 5000, "%ff%fe"):
        r = me.get(f"/account/statements/{bad}")
        assert r.status_code == 400, (bad, r.status_code)
        assert me.get(f"/account/statements/{bad}.csv").status_code == 400
    assert admin.get("/admin/accounts/999999/statements/2026-11").status_code == 404
    assert_invariants(gw, aid)
    assert_invariants(gw, other)

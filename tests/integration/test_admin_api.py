"""Issue 4: the admin API (accounts, wallets, keys, usage, CSV) and its refusals, run under
every reserver (issue 12, item 3; tests/reservers.py)."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.moneykit import MASTER, MAX_TOKENS, MESSAGES, AdminAPI, assert_ledger_balances, micro
from tests.reservers import MEMORY_ONLY, reserver_env  # noqa: F401  (fixture)
from tests.services import pg_url, redis_prefix  # noqa: F401  (fixtures)


@pytest.fixture
def gw(fake: FakeUpstream, make_inproc: Any,
       reserver_env: dict[str, str]) -> Gateway:  # noqa: F811
    models = {"kimi-k2": {"routes": [{"provider": "fake0", "upstream_model": "kimi-up"}]},
              "deepseek-chat": {"routes": [{"provider": "fake0", "upstream_model": "ds-up"}]}}
    return make_inproc(fake_config(fake, models=models),  # type: ignore[no-any-return]
                       env={"SMARTOKEN_MASTER_KEY": MASTER, **reserver_env})


def _err(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    assert r.headers["x-request-id"].startswith("req_")
    if code is not None:
        assert err["code"] == code, err
    return err  # type: ignore[no-any-return]


def _snapshot(gw: Gateway) -> Any:
    return (gw.sql("SELECT * FROM accounts ORDER BY id"), gw.sql("SELECT * FROM wallets"),
            gw.sql("SELECT * FROM wallet_transactions"), gw.sql("SELECT * FROM api_keys"))


@MEMORY_ONLY
def test_admin_credentials(gw: Gateway) -> None:
    admin = AdminAPI(gw)
    aid = admin.account("alice")
    user_key, _ = admin.key(aid)
    _err(AdminAPI(gw, "").get("/admin/accounts"), 401)
    _err(AdminAPI(gw, MASTER + "x").get("/admin/accounts"), 401)
    _err(AdminAPI(gw, "sk-st-" + "x" * 40).get("/admin/accounts"), 401, "invalid_api_key")
    _err(AdminAPI(gw, user_key).get("/admin/accounts"), 403, "admin_required")
    _err(AdminAPI(gw, user_key).post("/admin/accounts", {"name": "mallory"}), 403)
    # An admin account's admin key is an admin credential; the role change takes effect at once.
    boss = admin.account("boss", role="admin")
    boss_key, _ = admin.key(boss, admin=True)
    names = [a["name"] for a in AdminAPI(gw, boss_key).ok(AdminAPI(gw, boss_key)
                                                          .get("/admin/accounts"))["data"]]
    assert {"admin", "alice", "boss"} <= set(names)
    admin.ok(admin.patch(f"/admin/accounts/{boss}", {"role": "user"}))
    _err(AdminAPI(gw, boss_key).get("/admin/accounts"), 403, "admin_required")
    assert "mallory" not in {r["name"] for r in gw.sql("SELECT name FROM accounts")}


def test_accounts_and_wallets(gw: Gateway) -> None:
    admin = AdminAPI(gw)
    created = admin.ok(admin.post("/admin/accounts", {"name": "acme", "credit": "12.50",
                                                      "password": "correct horse"}), 201)
    aid = created["id"]
    assert created["role"] == "user" and created["wallet"]["balance"] == "12.500000"
    before = _snapshot(gw)
    bad_accounts = [{"name": "acme"}, {"name": ""}, {"name": "has space"}, {"role": "user"},
                    {"name": "x", "role": "root"}, {"name": "x", "credit": 1.5},
                    {"name": "x", "credit": "-1"}, {"name": "x", "credit": "0.0000001"},
                    {"name": "x", "nickname": "y"}, {"name": "x", "password": "short"}, [],
                    "acme"]
    for body in bad_accounts:
        r = admin.post("/admin/accounts", body)
        _err(r, 409 if body == {"name": "acme"} else 400)
    _err(admin.request("POST", "/admin/accounts", content=b"{nope"), 400)
    path = f"/admin/accounts/{aid}/wallet/transactions"
    bad_txns: list[Any] = [
        {"amount": "5", "reason": ""}, {"amount": "5"}, {"reason": "why"},
        {"amount": 5.0, "reason": "float"}, {"amount": "abc", "reason": "x"},
        {"amount": "0", "reason": "zero"}, {"amount": "-5", "reason": "negative credit"},
        {"amount": "1e400", "reason": "huge"}, {"amount": "NaN", "reason": "nan"},
        {"kind": "debit", "amount": "5", "reason": "debits come from usage"},
        {"kind": "adjustment", "amount": "-12.500001", "reason": "below zero"},
        {"amount": "5", "reason": "x", "actor": "someone else"},
    ]
    for body in bad_txns:
        _err(admin.post(path, body), 400)
    _err(admin.post("/admin/accounts/999/wallet/transactions",
                    {"amount": "5", "reason": "x"}), 404, "account_not_found")
    _err(admin.get("/admin/accounts/abc"), 404)
    assert _snapshot(gw) == before  # every refusal changed nothing

    t1 = admin.credit(aid, "7.25", reason="invoice 42")
    assert t1["amount"] == "7.250000" and t1["actor"] == "master-key"
    assert t1["reason"] == "invoice 42" and t1["wallet"]["balance"] == "19.750000"
    t2 = admin.credit(aid, "-0.750001", kind="adjustment", reason="correction")
    assert t2["kind"] == "adjustment" and t2["wallet"]["balance"] == "18.999999"
    admin.credit(aid, 1, kind="refund", reason="integer dollars are exact too")
    wallet = admin.ok(admin.get(f"/admin/accounts/{aid}/wallet"))
    assert wallet["balance"] == wallet["ledger_sum"] == wallet["recorded_balance"] == "19.999999"
    txns = admin.ok(admin.get(path))
    assert [t["kind"] for t in txns["data"]] == ["refund", "adjustment", "credit", "credit"]
    assert sum(micro(t["amount"]) for t in txns["data"]) == 19_999_999
    first = admin.ok(admin.get(path, limit=2))
    second = admin.ok(admin.get(path, limit=2, offset=2))
    assert first["has_more"] and not second["has_more"]
    assert [t["id"] for t in first["data"] + second["data"]] == [t["id"] for t in txns["data"]]
    _err(admin.get(path, limit=0), 400)
    _err(admin.get(path, limit="x"), 400)
    _err(admin.get(path, sort="id"), 400)
    assert_ledger_balances(gw, aid)
    listed = admin.ok(admin.get("/admin/accounts"))["data"]
    assert any(a["id"] == aid and a["wallet"]["balance"] == "19.999999" for a in listed)


def test_keys_lifecycle(gw: Gateway, fake: FakeUpstream) -> None:
    admin = AdminAPI(gw)
    aid = admin.account("keys", credit="5")
    created = admin.ok(admin.post("/admin/keys", {
        "account_id": aid, "name": "ci", "families": ["kimi"], "daily_budget": "1.50",
        "monthly_budget": "20", "rpm": 100, "tpm": 100000, "expires_in": 3600}), 201)
    secret, kid = created["key"], created["id"]
    assert secret.startswith("sk-st-") and created["prefix"] == secret[:12]
    assert created["families"] == ["kimi"] and created["daily_budget"] == "1.500000"
    assert created["monthly_budget"] == "20.000000" and created["status"] == "active"
    assert created["rpm"] == 100 and created["tpm"] == 100000 and created["expires_at"]
    # The secret is shown once: never in a listing, a read, or the database.
    for r in (admin.get("/admin/keys"), admin.get(f"/admin/keys/{kid}"),
              admin.get("/admin/keys", account_id=aid)):
        assert secret not in r.text and r.status_code == 200
    assert secret not in str(gw.sql("SELECT * FROM api_keys"))
    client = gw.client(secret)
    client.chat.completions.create(model="kimi-k2", messages=MESSAGES, max_tokens=MAX_TOKENS)
    with pytest.raises(openai.PermissionDeniedError) as exc:
        client.chat.completions.create(model="deepseek-chat", messages=MESSAGES)
    assert exc.value.code == "model_not_allowed"
    assert len(gw.wait_usage(1)) == 1  # the usage row and its debit are written together

    before = _snapshot(gw)
    for body in [{"account_id": aid, "families": ["nope"]}, {"account_id": aid, "families": []},
                 {"account_id": aid, "families": "kimi"}, {"account_id": aid, "rpm": 0},
                 {"account_id": aid, "tpm": "10"}, {"account_id": aid, "daily_budget": "x"},
                 {"account_id": aid, "daily_budget": 0.5}, {"account_id": "1"}, {},
                 {"account_id": aid, "expires_at": "tomorrow"},
                 {"account_id": aid, "expires_in": -5},
                 {"account_id": aid, "expires_in": 5, "expires_at": None},
                 {"account_id": aid, "secret": "sk-st-mine"}]:
        _err(admin.post("/admin/keys", body), 400)
    _err(admin.post("/admin/keys", {"account_id": 999}), 404)
    _err(admin.patch(f"/admin/keys/{kid}", {"rpm": -1}), 400)
    _err(admin.patch(f"/admin/keys/{kid}", {"account_id": 1}), 400)
    _err(admin.patch("/admin/keys/999", {"rpm": 5}), 404, "key_not_found")
    _err(admin.post("/admin/keys/999/revoke"), 404)
    assert _snapshot(gw) == before

    # Update: families widened and budgets changed take effect on the next request.
    upd = admin.ok(admin.patch(f"/admin/keys/{kid}", {"families": None, "daily_budget": None,
                                                     "name": "ci-2", "rpm": None}))
    assert upd["families"] is None and upd["daily_budget"] is None and upd["name"] == "ci-2"
    assert upd["monthly_budget"] == "20.000000" and upd["rpm"] is None
    client.chat.completions.create(model="deepseek-chat", messages=MESSAGES, max_tokens=10)
    admin.ok(admin.patch(f"/admin/keys/{kid}", {"monthly_budget": "0"}))
    with pytest.raises(openai.RateLimitError) as rl:
        client.chat.completions.create(model="kimi-k2", messages=MESSAGES)
    assert rl.value.code == "budget_exceeded" and rl.value.param == "monthly_budget"
    # Revocation: refused on the very next request.
    revoked = admin.ok(admin.request("DELETE", f"/admin/keys/{kid}"))
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    with pytest.raises(openai.AuthenticationError) as auth:
        client.models.list()
    assert auth.value.code == "key_revoked"
    calls = len(fake.requests)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="kimi-k2", messages=MESSAGES)
    assert len(fake.requests) == calls


@MEMORY_ONLY
def test_usage_query_and_csv(gw: Gateway, fake: FakeUpstream) -> None:
    admin = AdminAPI(gw)
    a = admin.account("usage-a", credit="5")
    b = admin.account("usage-b", credit="5")
    ka, kida = admin.key(a)
    kb, kidb = admin.key(b)
    fake.set(usage={"prompt_tokens": 10, "completion_tokens": 20})
    for _ in range(3):
        gw.client(ka).chat.completions.create(model="kimi-k2", messages=MESSAGES)
    gw.client(ka).chat.completions.create(model="deepseek-chat", messages=MESSAGES)
    gw.client(kb).chat.completions.create(model="kimi-k2", messages=MESSAGES)
    fake.set(status=400, error_body={"error": {"message": "bad", "code": "invalid"}})
    with pytest.raises(openai.BadRequestError):
        gw.client(ka).chat.completions.create(model="kimi-k2", messages=MESSAGES)
    assert len(gw.wait_usage(6)) == 6
    t0 = time.time()

    everything = admin.ok(admin.get("/admin/usage"))
    assert len(everything["data"]) == 6 and everything["totals"]["requests"] == 6
    by_a = admin.ok(admin.get("/admin/usage", account_id=a))
    assert {r["account_id"] for r in by_a["data"]} == {a} and len(by_a["data"]) == 5
    assert len(admin.ok(admin.get("/admin/usage", key_id=kidb))["data"]) == 1
    ds = admin.ok(admin.get("/admin/usage", model="deepseek-chat"))["data"]
    assert len(ds) == 1 and ds[0]["key_id"] == kida
    rejected = admin.ok(admin.get("/admin/usage", status="rejected"))["data"]
    assert len(rejected) == 1 and rejected[0]["cost"] == "0.000000"
    assert admin.ok(admin.get("/admin/usage", since=t0 + 60))["data"] == []
    assert len(admin.ok(admin.get("/admin/usage", until="2999-01-01T00:00:00Z"))["data"]) == 6
    assert len(admin.ok(admin.get("/admin/usage", since="2000-01-01"))["data"]) == 6
    p1 = admin.ok(admin.get("/admin/usage", limit=4))
    p2 = admin.ok(admin.get("/admin/usage", limit=4, offset=4))
    assert p1["has_more"] and not p2["has_more"] and len(p2["data"]) == 2
    assert {r["id"] for r in p1["data"]} | {r["id"] for r in p2["data"]} == \
        {r["id"] for r in everything["data"]}
    cost_a = sum(micro(r["cost"]) for r in by_a["data"])
    assert micro(by_a["totals"]["cost"]) == cost_a > 0
    for params in [{"limit": 0}, {"limit": 100000}, {"offset": -1}, {"since": "yesterday"},
                   {"status": "weird"}, {"account_id": "abc"}, {"order": "asc"}]:
        _err(admin.get("/admin/usage", **params), 400)

    r = admin.get("/admin/usage.csv", account_id=a)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 5 and {row["account_id"] for row in rows} == {str(a)}
    assert sum(micro(row["cost"]) for row in rows) == cost_a
    assert {row["status"] for row in rows} == {"ok", "rejected"}
    assert set(rows[0]) >= {"id", "created_at", "key_id", "model", "prompt_tokens",
                            "completion_tokens", "cost", "status"}
    _err(admin.get("/admin/usage.csv", status="nope"), 400)
    _err(AdminAPI(gw, ka).get("/admin/usage.csv"), 403)

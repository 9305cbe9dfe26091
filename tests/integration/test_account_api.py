"""Issue 4: an account's key sees only its own keys, usage and transactions; revoked and
expired keys are refused on their next request. Run under every reserver (issue 12, item 3;
tests/reservers.py)."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.moneykit import MASTER, MESSAGES, AdminAPI
from tests.reservers import MEMORY_ONLY, reserver_env  # noqa: F401  (fixture)
from tests.services import pg_url, redis_prefix  # noqa: F401  (fixtures)


@pytest.fixture
def gw(fake: FakeUpstream, make_inproc: Any,
       reserver_env: dict[str, str]) -> Gateway:  # noqa: F811
    return make_inproc(fake_config(fake),  # type: ignore[no-any-return]
                       env={"SMARTOKEN_MASTER_KEY": MASTER, **reserver_env})


def test_account_a_cannot_read_account_b(gw: Gateway) -> None:
    admin = AdminAPI(gw)
    a, b = admin.account("a", credit="3"), admin.account("b", credit="4")
    ka, kida = admin.key(a, name="a-main")
    kb, kidb = admin.key(b, name="b-main")
    for key in (ka, ka, kb):
        gw.client(key).chat.completions.create(model="kimi-k2", messages=MESSAGES)
    gw.wait_usage(3)
    api_a, api_b = AdminAPI(gw, ka), AdminAPI(gw, kb)

    me = api_a.ok(api_a.get("/account"))
    assert me["id"] == a and me["key_id"] == kida and me["name"] == "a"
    keys = api_a.ok(api_a.get("/account/keys"))["data"]
    assert [k["id"] for k in keys] == [kida]
    usage = api_a.ok(api_a.get("/account/usage"))
    assert len(usage["data"]) == 2 and {r["account_id"] for r in usage["data"]} == {a}
    assert usage["totals"]["requests"] == 2
    assert api_a.ok(api_a.get("/account/usage", key_id=kidb))["data"] == []
    assert api_a.get("/account/usage", account_id=b).status_code == 400
    rows = list(csv.DictReader(io.StringIO(api_a.get("/account/usage.csv").text)))
    assert len(rows) == 2 and {r["account_id"] for r in rows} == {str(a)}
    txns = api_a.ok(api_a.get("/account/wallet/transactions"))["data"]
    assert txns and {t["account_id"] for t in txns} == {a}
    assert api_a.ok(api_a.get("/account/wallet"))["account_id"] == a
    # B's key by id: not found for A, and A's attempts change nothing.
    assert api_a.get(f"/account/keys/{kidb}").status_code == 404
    assert api_a.post(f"/account/keys/{kidb}/revoke").status_code == 404
    assert api_a.patch(f"/account/keys/{kidb}", {"rpm": 1}).status_code == 404
    assert api_a.request("DELETE", f"/account/keys/{kidb}").status_code == 404
    gw.client(kb).chat.completions.create(model="kimi-k2", messages=MESSAGES)
    assert api_b.ok(api_b.get(f"/account/keys/{kidb}"))["rpm"] is None
    # No admin power either.
    for path in ("/admin/accounts", f"/admin/accounts/{b}/wallet", "/admin/usage",
                 "/admin/keys"):
        r = api_a.get(path)
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required"
    assert api_a.post(f"/admin/accounts/{a}/wallet/transactions",
                      {"amount": "100", "reason": "free money"}).status_code == 403
    assert len(gw.sql("SELECT * FROM wallet_transactions WHERE kind = 'credit'")) == 3
    # Bad keys on account endpoints: 401, OpenAI-shaped.
    r = AdminAPI(gw, "sk-st-nope").get("/account/usage")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert AdminAPI(gw, MASTER).get("/account/usage").status_code == 401  # not a key


def test_account_manages_its_own_keys(gw: Gateway) -> None:
    admin = AdminAPI(gw)
    a = admin.account("owner", credit="2")
    ka, _ = admin.key(a)
    api = AdminAPI(gw, ka)
    made = api.ok(api.post("/account/keys", {"name": "laptop", "families": ["kimi"],
                                             "daily_budget": "0.25"}), 201)
    assert made["account_id"] == a and made["key"].startswith("sk-st-")
    gw.client(made["key"]).chat.completions.create(model="kimi-k2", messages=MESSAGES)
    _bad = api.post("/account/keys", {"account_id": 1})
    assert _bad.status_code == 400  # cannot aim at another account
    # A scoped key cannot mint a wider key, widen itself, or revoke its siblings.
    scoped = AdminAPI(gw, made["key"])
    before = gw.sql("SELECT * FROM api_keys ORDER BY id")
    for r in (scoped.post("/account/keys", {"name": "wider"}),
              scoped.patch(f"/account/keys/{made['id']}", {"families": None}),
              scoped.post(f"/account/keys/{made['id'] - 1}/revoke")):
        assert r.status_code == 403 and r.json()["error"]["code"] == "restricted_key"
    assert gw.sql("SELECT * FROM api_keys ORDER BY id") == before
    assert len(scoped.ok(scoped.get("/account/keys"))["data"]) == 2  # reading is fine
    revoked = api.ok(api.post(f"/account/keys/{made['id']}/revoke"))
    assert revoked["status"] == "revoked"
    with pytest.raises(openai.AuthenticationError) as exc:
        gw.client(made["key"]).chat.completions.create(model="kimi-k2", messages=MESSAGES)
    assert exc.value.code == "key_revoked"


@MEMORY_ONLY
def test_expired_keys_are_refused_on_their_next_request(gw: Gateway) -> None:
    admin = AdminAPI(gw)
    a = admin.account("expiring", credit="2")
    short, _ = admin.key(a, expires_in=2)
    other, other_id = admin.key(a)
    gw.client(short).chat.completions.create(model="kimi-k2", messages=MESSAGES)
    gw.client(other).chat.completions.create(model="kimi-k2", messages=MESSAGES)
    time.sleep(2.5)
    with pytest.raises(openai.AuthenticationError) as exc:
        gw.client(short).chat.completions.create(model="kimi-k2", messages=MESSAGES)
    assert exc.value.code == "key_expired"
    # Setting an expiry in the past through the admin API ends the key at once.
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    view = admin.ok(admin.patch(f"/admin/keys/{other_id}", {"expires_at": past}))
    assert view["status"] == "expired"
    with pytest.raises(openai.AuthenticationError) as exc:
        gw.client(other).models.list()
    assert exc.value.code == "key_expired"
    assert len(gw.wait_usage(2)) == 2

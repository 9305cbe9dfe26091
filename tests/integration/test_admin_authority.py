"""Issue 12 item 5: admin authority is explicit and never rides on a restricted key.

Every route the app serves under ``/admin`` is enumerated from ``smartoken.app.routes()`` (a
route added later is covered without editing this file) and called, with a body that would
change something, by keys an admin account's owner meant to be lesser: restricted by families,
by a budget, by rpm, or simply not created as an admin key. Each gets 403 and no table changes.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from smartoken.app import routes
from smartoken.auth.secretbox import generate_key
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config, run_cli
from tests.inproc import InProcessGateway
from tests.moneykit import MASTER, AdminAPI

TABLES = ("accounts", "wallets", "wallet_transactions", "api_keys", "stored_providers",
          "catalog_documents")
PROVIDER = {"name": "evil", "dialect": "openai", "base_url": "http://127.0.0.1:9/v1",
            "api_key": "x" * 20}
# What each write would do if it were allowed: the attack of issue 12 item 5.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/admin/accounts"): {"name": "mallory", "role": "admin"},
    ("PATCH", "/admin/accounts/{account_id:int}"): {"role": "admin"},
    ("POST", "/admin/accounts/{account_id:int}/wallet/transactions"):
        {"kind": "credit", "amount": "1000", "reason": "mine now"},
    ("POST", "/admin/keys"): {"account_id": "{other}"},
    ("PATCH", "/admin/keys/{key_id:int}"): {"families": None, "daily_budget": None,
                                            "rpm": None},
    ("POST", "/admin/providers"): PROVIDER,
    ("PATCH", "/admin/providers/{name}"): {"base_url": "http://127.0.0.1:9/v1"},
    ("PUT", "/admin/catalog"): {"models": {}},
}


def admin_routes() -> list[tuple[str, str]]:
    out = []
    for r in routes():
        path = getattr(r, "path", "")
        if path.startswith("/admin"):
            out.extend((m, path) for m in sorted(r.methods or ()) if m != "HEAD")
    return out


def snapshot(gw: Gateway) -> list[Any]:
    return [gw.sql(f"SELECT * FROM {t} ORDER BY 1") for t in TABLES]


@pytest.fixture
def gw(fake: FakeUpstream, make_inproc: Callable[..., InProcessGateway]) -> InProcessGateway:
    return make_inproc(fake_config(fake), env={"SMARTOKEN_MASTER_KEY": MASTER,
                                             "SMARTOKEN_SECRET_KEY": generate_key()})


def test_restricted_or_unflagged_keys_of_an_admin_account_are_never_admins(
        gw: InProcessGateway) -> None:
    master = AdminAPI(gw)
    boss = master.account("boss", credit="5", role="admin")
    other = master.account("other", credit="5")
    victim_key, victim_id = master.key(other)
    master.ok(master.post("/admin/providers", {**PROVIDER, "name": "stored"}), 201)
    admin_key, _ = master.key(boss, admin=True)
    assert AdminAPI(gw, admin_key).get("/admin/accounts").status_code == 200
    lesser = {
        "families": master.key(boss, families=["kimi"]),
        "daily budget": master.key(boss, daily_budget="1"),
        "rpm": master.key(boss, rpm=100),
        "not created as admin": master.key(boss),
    }
    # Before the fix each of these was an admin (its account's role made it one).
    found = admin_routes()
    assert len(found) >= 20 and ("PUT", "/admin/catalog") in found
    ids = {"account_id": boss, "key_id": victim_id, "name": "stored", "invite_id": 1,
           "code_id": 1, "month": "2026-11"}
    before = snapshot(gw)
    for label, (secret, _) in lesser.items():
        api = AdminAPI(gw, secret)
        for method, path in found:
            url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(ids[m.group(1)]), path)
            body = BODIES.get((method, path))
            if body == {"account_id": "{other}"}:
                body = {"account_id": other}
            r = api.request(method, url, json=body) if body is not None else \
                api.request(method, url)
            assert r.status_code == 403, (label, method, path, r.status_code, r.text)
            assert r.json()["error"]["code"] == "admin_required"
        assert snapshot(gw) == before, label
    assert AdminAPI(gw, victim_key).get("/account").status_code == 200


def test_admin_keys_are_created_explicitly_and_unrestricted(gw: InProcessGateway) -> None:
    master = AdminAPI(gw)
    boss = master.account("boss2", role="admin")
    user = master.account("plain")
    before = snapshot(gw)
    for body in ({"account_id": boss, "admin": True, "rpm": 5},
                 {"account_id": boss, "admin": True, "families": ["kimi"]},
                 {"account_id": boss, "admin": True, "daily_budget": "1"},
                 {"account_id": boss, "admin": True, "expires_in": 3600},
                 {"account_id": user, "admin": True},
                 {"account_id": boss, "admin": "yes"}):
        r = master.post("/admin/keys", body)
        assert r.status_code == 400 and r.json()["error"]["param"] == "admin", (body, r.text)
    assert snapshot(gw) == before
    secret, key_id = master.key(boss, admin=True)
    assert master.ok(master.get(f"/admin/keys/{key_id}"))["admin"] is True
    # Restricting an admin key later takes its authority away at once.
    master.ok(master.patch(f"/admin/keys/{key_id}", {"rpm": 1000}))
    assert AdminAPI(gw, secret).get("/admin/accounts").status_code == 403
    master.ok(master.patch(f"/admin/keys/{key_id}", {"rpm": None}))
    assert AdminAPI(gw, secret).get("/admin/accounts").status_code == 200
    # Demoting the account takes it away too; promoting another account gives its keys none.
    plain_key, _ = master.key(user)
    master.ok(master.patch(f"/admin/accounts/{user}", {"role": "admin"}))
    assert AdminAPI(gw, plain_key).get("/admin/accounts").status_code == 403
    master.ok(master.patch(f"/admin/accounts/{boss}", {"role": "user"}))
    assert AdminAPI(gw, secret).get("/admin/accounts").status_code == 403
    # The account API cannot mint admin keys.
    r = AdminAPI(gw, plain_key).post("/account/keys", {"admin": True})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_parameter"


def test_cli_admin_flag(gw: InProcessGateway) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(["--data-dir", str(gw.data_dir), "keys", "create", *args], gw.env)

    AdminAPI(gw).account("plain")
    before = snapshot(gw)
    for args in (("--account", "admin", "--admin", "--rpm", "5"),
                 ("--account", "admin", "--admin", "--families", "kimi"),
                 ("--account", "plain", "--admin")):
        out = cli(*args)
        assert out.returncode != 0 and "--admin" in out.stderr, (args, out.stderr)
    assert snapshot(gw) == before
    plain = cli("--account", "admin").stdout.strip().splitlines()[-1]
    admin = cli("--account", "admin", "--admin").stdout.strip().splitlines()[-1]
    assert AdminAPI(gw, plain).get("/admin/accounts").status_code == 403
    assert AdminAPI(gw, admin).get("/admin/accounts").status_code == 200

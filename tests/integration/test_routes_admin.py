"""GET /admin/routes and ``smartoken routes``: route health for admins only."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.harness import fake_config, run_cli

MSG = [{"role": "user", "content": "hello"}]


def test_admin_routes_requires_an_admin_and_shows_health(make_fake: Any,
                                                         make_inproc: Any) -> None:
    bad, good = make_fake(status=500), make_fake()
    cfg = fake_config(bad, good, models={"kimi-k2": {"routes": [
        {"provider": "fake0", "priority": 2}, {"provider": "fake1", "priority": 1}]}})
    gw = make_inproc(cfg, env={"SMARTOKEN_MASTER_KEY": "mk-test-secret"})
    user_key = gw.key(account="alice", credit="10")
    list(gw.client(user_key).chat.completions.create(model="kimi-k2", messages=MSG,
                                                     stream=True))
    gw.client(user_key).chat.completions.create(model="kimi-k2", messages=MSG)
    url = gw.base_url + "/admin/routes"
    assert httpx.get(url).status_code == 401
    r = httpx.get(url, headers={"Authorization": f"Bearer {user_key}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required"
    assert httpx.get(url, headers={"Authorization": "Bearer mk-wrong"}).status_code == 401
    r = httpx.get(url, headers={"Authorization": "Bearer mk-test-secret"})
    assert r.status_code == 200
    rows = {row["id"]: row for row in r.json()["data"]}
    failing, healthy = rows["kimi-k2:fake0/kimi-k2"], rows["kimi-k2:fake1/kimi-k2"]
    assert failing["failures"] == 2 and failing["success_rate"] == 0.0
    assert "500" in failing["last_error"] and failing["priority"] == 2
    assert healthy["state"] == "closed" and healthy["successes"] == 2
    assert healthy["success_rate"] == 1.0 and healthy["p50_latency_ms"] > 0
    assert healthy["p50_ttft_ms"] is not None  # from the streamed request
    admin = gw.key(account="admin")  # the first-start admin account
    assert httpx.get(url, headers={"Authorization": f"Bearer {admin}"}).status_code == 200

    out = run_cli(["routes", "--url", gw.base_url, "--key", admin], gw.env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["ROUTE", "PRI", "W", "STATE"]
    row = next(line for line in lines if line.startswith("kimi-k2:fake0/kimi-k2"))
    assert "upstream returned 500" in row
    js = run_cli(["routes", "--url", gw.base_url, "--key", admin, "--json"], gw.env)
    assert {r["id"] for r in json.loads(js.stdout)} >= set(rows)
    denied = run_cli(["routes", "--url", gw.base_url, "--key", user_key], gw.env)
    assert denied.returncode != 0 and "403" in denied.stderr

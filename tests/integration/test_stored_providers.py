"""Issue 14: a provider stored through /admin/providers is built by the same factory as one in
the YAML file, so its dialect's transport (auth header, wire format) is the one that is used."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from smartoken.auth.secretbox import generate_key

MASTER = "master-key-Zq8vTq2LmWc"
STORED_KEY = "stored-anthropic-key-Lq2Vd"


def test_stored_anthropic_provider_speaks_anthropic(make_fake: Any, make_inproc: Any) -> None:
    usage = {"input_tokens": 9, "output_tokens": 4}
    fake = make_fake(dialect="anthropic", usage=usage, content="Hi from Claude")
    gw = make_inproc(None, env={"SMARTOKEN_MASTER_KEY": MASTER,
                                      "SMARTOKEN_SECRET_KEY": generate_key()})
    r = httpx.post(gw.base_url + "/admin/providers", timeout=15,
                   headers={"authorization": f"Bearer {MASTER}"},
                   json={"name": "claude", "dialect": "anthropic", "base_url": fake.base_url,
                         "api_key": STORED_KEY,
                         "routes": [{"model": "kimi-k2", "upstream_model": "claude-x",
                                     "priority": 100}]})
    assert r.status_code == 201, r.text
    client = gw.client(gw.key(credit="10"))
    resp = client.chat.completions.create(model="kimi-k2", max_tokens=50,
                                          messages=[{"role": "user", "content": "hello"}])
    assert resp.choices[0].message.content == "Hi from Claude"
    assert resp.usage is not None and resp.usage.prompt_tokens == 9
    sent, headers = fake.requests[-1], fake.headers[-1]
    assert sent["model"] == "claude-x" and sent["max_tokens"] == 50
    assert headers["x-api-key"] == STORED_KEY and "Authorization" not in headers
    chunks = list(client.chat.completions.create(
        model="kimi-k2", messages=[{"role": "user", "content": "hello"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() \
        == "Hi from Claude"
    [first, second] = gw.wait_usage(2)
    assert first["provider"] == "claude" and first["status"] == "ok" and second["status"] == "ok"


def admin(gw: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, gw.base_url + path, timeout=15,
                         headers={"authorization": f"Bearer {MASTER}"}, **kw)


def used_keys(fake: Any) -> list[str]:
    return [h.get("Authorization", "").removeprefix("Bearer ") or h.get("x-api-key", "")
            for h in fake.headers]


def test_key_pool_revoked_key_cools_alone(make_fake: Any, make_inproc: Any) -> None:
    fake = make_fake(key_status={"vendor-key-revoked-1111": 401})
    config = {"providers": {"pool": {
        "base_url": fake.base_url, "api_keys": [
            "vendor-key-revoked-1111", {"key": "vendor-key-good-2222", "weight": 2},
            {"key_env": "THIRD_KEY"}, {"key_env": "UNSET_KEY"}]}},
        "models": {"kimi-k2": {"routes": [{"provider": "pool", "upstream_model": "k"}]}}}
    gw = make_inproc(config, env={"SMARTOKEN_MASTER_KEY": MASTER,
                                  "THIRD_KEY": "vendor-key-third-3333"})
    client = gw.client(gw.key(credit="10"))
    for _ in range(9):
        resp = client.chat.completions.create(model="kimi-k2", messages=[
            {"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content
    used = used_keys(fake)
    assert used.count("vendor-key-revoked-1111") == 1  # refused once, then cooling
    served = [k for k in used if k != "vendor-key-revoked-1111"]
    assert len(served) == 9  # every request answered, the retry never reached the client
    # weights 2:1 between the two good keys
    assert served.count("vendor-key-good-2222") == 6 and served.count(
        "vendor-key-third-3333") == 3
    health = admin(gw, "GET", "/admin/providers/pool/health").json()["keys"]
    assert [k["state"] for k in health] == ["cooling", "ok", "ok"]
    assert health[0]["key"] == "key 1 (…1111)" and "401" in health[0]["last_error"]
    assert health[0]["failures"] == 1 and health[1]["requests"] == 6
    records = gw.wait_usage(9)
    assert {r["status"] for r in records} == {"ok"} and len(records) == 9
    text = str(health) + str(records) + gw.log()
    for secret in ("vendor-key-revoked-1111", "vendor-key-good-2222", "vendor-key-third-3333"):
        assert secret not in text


def test_key_pool_rate_limited_key_and_all_keys_refused(make_fake: Any,
                                                        make_inproc: Any) -> None:
    fake = make_fake(key_status={"vendor-key-a-aaaa": 429, "vendor-key-b-bbbb": 401},
                     retry_after=7)
    config = {"providers": {"p": {"base_url": fake.base_url,
                                  "api_keys": ["vendor-key-a-aaaa", "vendor-key-b-bbbb"]}},
              "models": {"kimi-k2": {"routes": [{"provider": "p", "upstream_model": "k"}]}}}
    gw = make_inproc(config, env={"SMARTOKEN_MASTER_KEY": MASTER})
    client = gw.client(gw.key(credit="10"), max_retries=0)
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="kimi-k2", messages=[
            {"role": "user", "content": "hi"}])
    assert err.value.status_code in (429, 502, 503)
    assert sorted(used_keys(fake)) == ["vendor-key-a-aaaa", "vendor-key-b-bbbb"]
    health = admin(gw, "GET", "/admin/providers/p/health").json()["keys"]
    assert [k["state"] for k in health] == ["cooling", "cooling"]
    assert health[1]["last_error_kind"] is not None
    assert 5 < health[0]["cooling_for_s"] <= 7  # the vendor's Retry-After
    assert health[1]["cooling_for_s"] > 200  # a refused key cools for minutes


def test_provider_test_action(make_fake: Any, make_inproc: Any) -> None:
    fake = make_fake(models=["moonshot-v1-8k", "kimi-k2-0905"])
    gw = make_inproc(None, env={"SMARTOKEN_MASTER_KEY": MASTER,
                                "SMARTOKEN_SECRET_KEY": generate_key()})
    r = admin(gw, "POST", "/admin/providers", json={
        "name": "kimi", "base_url": fake.base_url,
        "api_keys": ["vendor-key-one-1111", {"key": "vendor-key-two-2222", "weight": 3}],
        "routes": [{"model": "kimi-k2", "upstream_model": "kimi-k2-0905"}]})
    assert r.status_code == 201, r.text
    assert r.json()["key_count"] == 2 and r.json()["key_weights"] == [1, 3]
    [row] = gw.sql("SELECT api_key_enc FROM stored_providers")
    assert "vendor-key" not in str(row)
    result = admin(gw, "POST", "/admin/providers/kimi/test").json()
    assert result["ok"] is True and result["error"] is None
    assert result["model"] == "kimi-k2-0905" and result["latency_ms"] > 0
    assert result["models"] == ["kimi-k2-0905", "moonshot-v1-8k"]
    assert fake.requests[-1]["max_tokens"] == 1
    fake.set(key_status={"vendor-key-one-1111": 401, "vendor-key-two-2222": 401})
    result = admin(gw, "POST", "/admin/providers/kimi/test", json={"model": "other"}).json()
    assert result["ok"] is False and result["error"]["status"] == 401
    assert result["model"] == "other" and result["models"] is None
    assert "vendor-key" not in str(result)
    assert admin(gw, "POST", "/admin/providers/nope/test").status_code == 404
    assert admin(gw, "POST", "/admin/providers/kimi/test",
                 json={"model": ["x"]}).status_code == 400
    bad = admin(gw, "PATCH", "/admin/providers/kimi", json={"api_keys": [{"key": "x",
                                                                          "weight": 0}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "api_keys"
    records_before = len(fake.requests)
    client = gw.client(gw.key(credit="10"))
    fake.set(key_status={"vendor-key-one-1111": 401})
    client.chat.completions.create(model="kimi-k2", messages=[{"role": "user", "content": "x"}])
    assert used_keys(fake)[records_before:][-1] == "vendor-key-two-2222"


def test_run_time_changes_are_audited(make_fake: Any, make_inproc: Any) -> None:
    fake = make_fake()
    gw = make_inproc(None, env={"SMARTOKEN_MASTER_KEY": MASTER,
                                "SMARTOKEN_SECRET_KEY": generate_key()})
    assert admin(gw, "POST", "/admin/providers", json={
        "name": "up", "base_url": fake.base_url, "api_key": "vendor-secret-Kd81",
        "routes": [{"model": "kimi-k2", "weight": 1}]}).status_code == 201
    assert admin(gw, "PATCH", "/admin/providers/up", json={
        "routes": [{"model": "kimi-k2", "weight": 5}]}).status_code == 200
    entry = {"family": "kimi", "context_window": 262144, "max_output": 65536,
             "price": {"input": "1.25", "output": "4.00"}}
    r = admin(gw, "PUT", "/admin/catalog?merge=true", json={"models": {"kimi-k2.6": entry}})
    assert r.status_code == 200, r.text
    assert admin(gw, "DELETE", "/admin/providers/up").status_code == 200
    page = admin(gw, "GET", "/admin/audit").json()
    assert page["total"] == 4
    assert [e["action"] for e in page["data"]] == [
        "provider.delete", "catalog.import", "provider.update", "provider.create"]
    delete, catalog, update, create = page["data"]
    assert {e["actor"] for e in page["data"]} == {"master-key"}
    assert create["before"] is None and create["after"]["has_api_key"] is True
    assert update["before"]["routes"][0]["weight"] == 1 and \
        update["after"]["routes"][0]["weight"] == 5
    assert delete["after"] is None and delete["target"] == "provider:up"
    assert catalog["after"]["sent"]["models"]["kimi-k2.6"]["price"]["input"] == "1.25"
    assert catalog["after"]["version"] > catalog["before"]["version"]
    assert create["at"].endswith("+00:00")
    assert "vendor-secret-Kd81" not in str(page)
    only = admin(gw, "GET", "/admin/audit?target=provider:up&limit=1").json()
    assert only["total"] == 3 and len(only["data"]) == 1
    user = gw.key("someone", credit="1")
    r = httpx.get(gw.base_url + "/admin/audit", headers={"authorization": f"Bearer {user}"})
    assert r.status_code == 403
    assert admin(gw, "GET", "/admin/audit?target=a%00b").status_code == 400


def test_admin_api_disables_and_enables_an_account(make_inproc: Any) -> None:
    gw = make_inproc(None, env={"SMARTOKEN_MASTER_KEY": MASTER})
    aid = gw.account("erin", credit="1")
    secret = gw.key("erin")
    client = gw.client(secret, max_retries=0)
    r = admin(gw, "PATCH", f"/admin/accounts/{aid}", json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True and r.json()["role"] == "user"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert admin(gw, "PATCH", f"/admin/accounts/{aid}", json={"disabled": "yes"}
                 ).status_code == 400
    assert admin(gw, "PATCH", f"/admin/accounts/{aid}", json={}).status_code == 400
    r = admin(gw, "PATCH", f"/admin/accounts/{aid}", json={"disabled": False, "role": "admin"})
    assert r.json()["disabled"] is False and r.json()["role"] == "admin"
    assert client.models.list().data

"""Issue 8: secrets never reach logs or responses; provider keys are encrypted at rest; the
master secret rotates; /admin/providers validates and applies what it stores."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from smartoken.auth.secretbox import generate_key
from tests.harness import Gateway, fake_config, run_cli

MASTER = "master-key-Zq8vTq2LmWc"
PROVIDER_KEY = "upstream-secret-0"  # fake_config's key for fake0
STORED_KEY = "stored-prov-key-Pw4kXn9d"
STORED_HEADER = "hdr-secret-Ja7cQe1V"
PASSWORD = "admin-password-Hy6tRb3s"


def cli(gw: Gateway, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return run_cli(["--data-dir", str(gw.data_dir), *args], {**gw.env, **(env or {})})


def admin(gw: Gateway, method: str, path: str, token: str = MASTER, **kw: Any
          ) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, gw.base_url + path, timeout=15, headers=headers, **kw)


@pytest.fixture
def secret_key() -> str:
    return generate_key()


def test_no_secret_in_logs_or_bodies(make_fake: Any, make_gateway: Any,
                                     secret_key: str) -> None:
    fake = make_fake(usage={"prompt_tokens": 5, "completion_tokens": 5})
    stored = make_fake()
    gw: Gateway = make_gateway(fake_config(fake), log_level="debug",
                               env={"SMARTOKEN_MASTER_KEY": MASTER,
                                    "SMARTOKEN_SECRET_KEY": secret_key})
    assert cli(gw, "accounts", "create", "ops", "--admin", "--password", PASSWORD).returncode == 0
    key = gw.key(credit="10")
    near_miss = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    bodies: list[str] = []

    def keep(r: httpx.Response) -> httpx.Response:
        bodies.append(r.text + " " + " ".join(f"{k}: {v}" for k, v in r.headers.items()))
        return r

    chat = {"model": "kimi-k2", "messages": [{"role": "user", "content": "hi"}]}
    url = gw.base_url + "/v1/chat/completions"
    with httpx.Client(timeout=15) as http:
        assert keep(http.post(url, json=chat, headers={"authorization": f"Bearer {key}"})
                    ).status_code == 200
        for token in (near_miss, MASTER, PASSWORD, secret_key, PROVIDER_KEY):
            assert keep(http.post(url, json=chat, headers={"authorization": f"Bearer {token}"})
                        ).status_code == 401
        keep(http.post(url, json=chat, headers={"authorization": f"Basic {PASSWORD}"}))
        keep(http.post(url, json={**chat, "api_key": PROVIDER_KEY, "model": key},
                       headers={"authorization": f"Bearer {key}"}))
        # An upstream that echoes our credential back in its error.
        fake.set(status=401, error_body={"error": {"message": f"Incorrect API key provided: "
                                                   f"{PROVIDER_KEY}", "type": "auth"}})
        assert keep(http.post(url, json=chat, headers={"authorization": f"Bearer {key}"})
                    ).status_code >= 500
        fake.set(status=400, error_body={"error": {"message": f"bad key {PROVIDER_KEY}",
                                                   "code": "bad"}})
        assert keep(http.post(url, json=chat, headers={"authorization": f"Bearer {key}"})
                    ).status_code == 400
    # The admin API: create a stored provider with a key and a secret header.
    r = keep(admin(gw, "POST", "/admin/providers", json={
        "name": "stored", "base_url": stored.base_url, "api_key": STORED_KEY,
        "headers": {"X-Custom-Auth": STORED_HEADER},
        "routes": [{"model": "deepseek-chat", "priority": 10}]}))
    assert r.status_code == 201, r.text
    assert r.json()["has_api_key"] is True
    keep(admin(gw, "GET", "/admin/providers"))
    keep(admin(gw, "GET", "/admin/providers/stored"))
    keep(admin(gw, "GET", "/admin/providers", token=MASTER + "x"))
    keep(admin(gw, "POST", "/admin/providers", json={"name": "bad", "base_url":
                                                      f"https://user:{PASSWORD}@h/v1"}))
    resp = gw.client(key).chat.completions.create(
        model="deepseek-chat", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content
    assert stored.headers[-1]["Authorization"] == f"Bearer {STORED_KEY}"
    assert stored.headers[-1]["X-Custom-Auth"] == STORED_HEADER
    keep(httpx.get(gw.base_url + "/metrics"))
    keep(httpx.get(gw.base_url + "/openapi.json"))
    # The stored provider's secrets are ciphertext in the database.
    [row] = gw.sql("SELECT * FROM stored_providers")
    assert STORED_KEY not in str(row) and STORED_HEADER not in str(row)
    assert row["api_key_enc"].startswith("gAAAA")
    records = str(gw.usage())
    assert gw.stop() == 0
    log = gw.log()
    assert '"logger":"smartoken.access"' in log and '"msg":"request"' in log  # logs were on
    for secret in (key, near_miss, MASTER, PROVIDER_KEY, STORED_KEY, STORED_HEADER, PASSWORD,
                   secret_key):
        assert secret not in log, f"{secret!r} found in the log"
        for body in bodies:
            assert secret not in body, f"{secret!r} found in a response: {body[:300]}"
        assert secret not in records
    assert key[:12] in log  # the key is identified by its visible prefix


def test_rotation_reencrypts_and_old_key_is_then_useless(make_fake: Any, make_gateway: Any,
                                                         tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    stored = make_fake()
    gw: Gateway = make_gateway(None, env={"SMARTOKEN_MASTER_KEY": MASTER,
                                          "SMARTOKEN_SECRET_KEY": old})
    r = admin(gw, "POST", "/admin/providers", json={
        "name": "up", "base_url": stored.base_url, "api_key": STORED_KEY,
        "routes": [{"model": "kimi-k2", "upstream_model": "kimi-upstream"}]})
    assert r.status_code == 201, r.text
    [before] = gw.sql("SELECT api_key_enc FROM stored_providers")
    assert gw.stop() == 0

    # Rotation needs the new key first and the old one after it.
    only_new = cli(gw, "secrets", "rotate", env={"SMARTOKEN_SECRET_KEY": new})
    assert only_new.returncode != 0 and "cannot decrypt" in only_new.stderr
    rotated = cli(gw, "secrets", "rotate", env={"SMARTOKEN_SECRET_KEY": f"{new},{old}"})
    assert rotated.returncode == 0, rotated.stderr
    assert "1 stored provider" in rotated.stdout
    [after] = gw.sql("SELECT api_key_enc FROM stored_providers")
    assert after["api_key_enc"] != before["api_key_enc"]

    # With only the new key the gateway starts and serves through the stored provider.
    gw.env["SMARTOKEN_SECRET_KEY"] = new
    gw.port = gw.port  # same port, fresh process
    gw.start()
    key = gw.key(credit="5")
    resp = gw.client(key).chat.completions.create(
        model="kimi-k2", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content
    assert stored.requests[-1]["model"] == "kimi-upstream"
    assert stored.headers[-1]["Authorization"] == f"Bearer {STORED_KEY}"
    assert gw.stop() == 0

    # With only the old key the gateway refuses to start, naming the problem.
    gw.env["SMARTOKEN_SECRET_KEY"] = old
    with pytest.raises(RuntimeError, match="cannot decrypt the API key of stored provider 'up'"):
        gw.start()  # it exits as soon as it fails; the timeout is for a loaded machine
    gw.stop()


def test_admin_providers_validation_and_credentials(make_fake: Any, make_inproc: Any,
                                                    secret_key: str) -> None:
    up = make_fake()
    gw: Gateway = make_inproc(None, env={"SMARTOKEN_MASTER_KEY": MASTER,
                                         "SMARTOKEN_SECRET_KEY": secret_key})
    user_key = gw.key(account="alice", credit="1")
    admin_key = gw.key(account="admin")
    assert admin(gw, "GET", "/admin/providers", token="").status_code == 401
    assert admin(gw, "GET", "/admin/providers", token=user_key).status_code == 403
    assert admin(gw, "GET", "/admin/providers", token=admin_key).status_code == 200
    bad_urls = ["ftp://h/v1", "http:///v1", "https://u:p@h/v1", "https://h/v1?x=1",
                "http://h:99999/v1", "javascript:alert(1)", "", "h/v1", "http://h /v1"]
    for url in bad_urls:
        r = admin(gw, "POST", "/admin/providers", json={"name": "p", "base_url": url})
        assert r.status_code == 400 and r.json()["error"]["param"] == "base_url", (url, r.text)
    for body, param in [({"name": "Bad Name", "base_url": up.base_url}, "name"),
                        ({"name": "p", "base_url": up.base_url, "dialect": "demo"}, "dialect"),
                        ({"name": "p", "base_url": up.base_url, "routes": [{"model": "nope"}]},
                         "routes[0].model"),
                        ({"name": "p", "base_url": up.base_url, "routes": [
                            {"model": "kimi-k2", "weight": 0}]}, "routes[0].weight"),
                        ({"name": "p", "base_url": up.base_url, "extra": 1}, "extra"),
                        ({"name": "demo", "base_url": up.base_url}, "name")]:
        r = admin(gw, "POST", "/admin/providers", json=body)
        assert r.status_code in (400, 409) and r.json()["error"]["param"] == param, r.text
    assert not gw.sql("SELECT * FROM stored_providers")

    # Create, use, patch, delete: applied in this process at once.
    r = admin(gw, "POST", "/admin/providers", json={
        "name": "p", "base_url": up.base_url + "/", "api_key": STORED_KEY,
        "routes": [{"model": "kimi-k2", "upstream_model": "u1"}]})
    assert r.status_code == 201 and r.json()["base_url"] == up.base_url
    assert admin(gw, "POST", "/admin/providers", json={"name": "p", "base_url": up.base_url}
                 ).status_code == 409
    client = gw.client(user_key)
    msgs = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model="kimi-k2", messages=msgs)
    assert up.requests[-1]["model"] == "u1"
    r = admin(gw, "PATCH", "/admin/providers/p", json={
        "routes": [{"model": "kimi-k2", "upstream_model": "u2"}], "api_key": None})
    assert r.status_code == 200 and r.json()["has_api_key"] is False
    client.chat.completions.create(model="kimi-k2", messages=msgs)
    assert up.requests[-1]["model"] == "u2" and "Authorization" not in up.headers[-1]
    assert admin(gw, "DELETE", "/admin/providers/p").status_code == 200
    assert admin(gw, "GET", "/admin/providers/p").status_code == 404
    n = len(up.requests)
    resp = client.chat.completions.create(model="kimi-k2", messages=msgs)
    assert len(up.requests) == n and resp.choices[0].message.content  # back on the demo route


def test_stored_provider_needs_the_secret_key(make_fake: Any, make_inproc: Any) -> None:
    up = make_fake()
    gw: Gateway = make_inproc(None, env={"SMARTOKEN_MASTER_KEY": MASTER})
    r = admin(gw, "POST", "/admin/providers", json={"name": "p", "base_url": up.base_url,
                                                    "api_key": STORED_KEY})
    assert r.status_code == 503 and "SMARTOKEN_SECRET_KEY" in r.json()["error"]["message"]
    assert not gw.sql("SELECT * FROM stored_providers")
    with pytest.raises(openai.AuthenticationError):
        gw.client(MASTER).models.list()  # the master key is not an API key


def test_admin_change_reaches_every_worker(make_fake: Any, make_gateway: Any,
                                           secret_key: str) -> None:
    up = make_fake()
    gw: Gateway = make_gateway(None, workers=2, env={"SMARTOKEN_MASTER_KEY": MASTER,
                                                     "SMARTOKEN_SECRET_KEY": secret_key})
    key = gw.key(credit="5")
    r = admin(gw, "POST", "/admin/providers", json={
        "name": "p", "base_url": up.base_url, "api_key": STORED_KEY,
        "routes": [{"model": "kimi-k2", "upstream_model": "u1"}]})
    assert r.status_code == 201, r.text

    def spread(n: int) -> None:  # a new connection per request lands on either worker
        for _ in range(n):
            resp = httpx.post(gw.base_url + "/v1/chat/completions", timeout=30, headers={
                "authorization": f"Bearer {key}", "connection": "close"},
                json={"model": "kimi-k2", "messages": [{"role": "user", "content": "hi"}]})
            assert resp.status_code == 200

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # converge: every worker routes to the new provider
        before = len(up.requests)
        spread(8)
        if len(up.requests) - before == 8:
            break
        time.sleep(0.5)
    else:
        pytest.fail("a worker never picked up the stored provider")
    assert admin(gw, "PATCH", "/admin/providers/p", json={"enabled": False}).status_code == 200
    time.sleep(2.5)  # a poll interval and more
    before = len(up.requests)
    spread(8)
    assert len(up.requests) == before  # disabled everywhere: back on the demo route

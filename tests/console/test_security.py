"""Console sessions and CSRF over plain HTTP: cookie flags, CSRF refusals on every kind of
state change, logout ending the session, and accounts isolated from each other."""

from __future__ import annotations

import re

import httpx
import openai
import pytest

from tests.console.conftest import add_user, admin_password, csrf_of, http_session
from tests.harness import Gateway


def _keys(gw: Gateway) -> int:
    return int(gw.sql("SELECT COUNT(*) AS n FROM api_keys")[0]["n"])


def test_session_cookie_flags_and_first_run_sign_in(console_gw: Gateway) -> None:
    gw = console_gw
    client = httpx.Client(base_url=gw.base_url)
    form = client.get("/console/login")
    assert form.headers["content-security-policy"].startswith("default-src 'self'")
    assert form.headers["x-frame-options"] == "DENY"
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    r = client.post("/console/login", data={"csrf_token": token.group(1), "name": "admin",
                                            "password": admin_password(gw)})
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("st_session="))
    flags = {p.strip().lower() for p in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    assert "secure" not in flags  # plain http on loopback
    # The cookie is signed: a tampered value is no session at all.
    value = cookie.split(";")[0].split("=", 1)[1]
    forged = httpx.get(gw.base_url + "/console/keys", cookies={"st_session": value[:-2] + "xx"})
    assert forged.status_code == 303 and "/console/login" in forged.headers["location"]
    # The session secret was generated on first start and lives in the database.
    [secret] = gw.sql("SELECT value FROM console_settings WHERE name = 'session_secret'")
    assert len(secret["value"]) >= 48

    # Behind an https proxy (X-Forwarded-Proto from a trusted address) the cookie is Secure.
    https = {"x-forwarded-proto": "https"}
    form = httpx.get(gw.base_url + "/console/login", headers=https)
    login_cookie = form.headers["set-cookie"]
    assert "secure" in login_cookie.lower()  # so httpx will not send it back over http: by hand
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    r = httpx.post(gw.base_url + "/console/login", headers={
        **https, "cookie": login_cookie.split(";")[0]}, data={
        "csrf_token": token.group(1), "name": "admin", "password": admin_password(gw)})
    assert r.status_code == 303
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("st_session="))
    assert "secure" in {p.strip().lower() for p in cookie.split(";")[1:]}


def test_csrf_is_required_for_every_state_change(console_gw: Gateway) -> None:
    gw = console_gw
    client, csrf = http_session(gw, "admin", admin_password(gw))
    before = _keys(gw)
    # A form post without a token, with a wrong one, with another session's token.
    other, other_csrf = http_session(gw, "admin", admin_password(gw))
    for data in ({"name": "evil"}, {"name": "evil", "csrf_token": "wrong"},
                 {"name": "evil", "csrf_token": other_csrf}):
        r = client.post("/console/keys", data=data)
        assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text
    assert _keys(gw) == before
    # The playground XHR without its header: refused before anything is reserved or billed.
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
    r = client.post("/console/api/playground", json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = client.post("/console/api/playground", json=body, headers={"x-csrf-token": "nope"})
    assert r.status_code == 403
    assert gw.usage() == []
    # Wallet credits, account creation, revocation and logout need it too.
    [admin] = gw.sql("SELECT id FROM accounts WHERE name = 'admin'")
    assert client.post("/console/admin/credit", data={"account_id": str(admin["id"]),
                                                      "amount": "50"}).status_code == 403
    assert client.post("/console/admin/accounts", data={"name": "mallory"}).status_code == 403
    key = gw.key(account="admin")
    key_id = gw.key_ids[key]
    assert client.post(f"/console/keys/{key_id}/revoke").status_code == 403
    assert client.post("/console/logout").status_code == 403
    assert gw.sql("SELECT COUNT(*) AS n FROM accounts WHERE name = 'mallory'")[0]["n"] == 0
    assert gw.sql("SELECT COUNT(*) AS n FROM wallet_transactions WHERE kind = 'credit'"
                  )[0]["n"] == 1  # only the first-start credit
    assert gw.client(key).models.list().data  # not revoked
    # The sign-in form itself: without the double-submit cookie it is refused.
    fresh = httpx.Client(base_url=gw.base_url)
    r = fresh.post("/console/login", data={"csrf_token": "x", "name": "admin",
                                           "password": admin_password(gw)})
    assert r.status_code == 403 and "st_session" not in r.headers.get("set-cookie", "")
    # With the right token each change goes through.
    r = client.post("/console/keys", data={"name": "good", "csrf_token": csrf})
    assert r.status_code == 303 and _keys(gw) == before + 2
    r = client.post(f"/console/keys/{key_id}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 303
    with pytest.raises(openai.AuthenticationError):
        gw.client(key).models.list()
    other.close()


def test_logout_ends_the_session_on_the_server(console_gw: Gateway) -> None:
    gw = console_gw
    client, csrf = http_session(gw, "admin", admin_password(gw))
    stolen = dict(client.cookies)
    assert client.get("/console/keys").status_code == 200
    r = client.post("/console/logout", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    # The old cookie, replayed, is no longer a session.
    replay = httpx.get(gw.base_url + "/console/keys", cookies=stolen)
    assert replay.status_code == 303 and "/console/login" in replay.headers["location"]
    api = httpx.post(gw.base_url + "/console/api/playground", cookies=stolen,
                     headers={"x-csrf-token": csrf}, json={"model": "demo", "messages": [
                         {"role": "user", "content": "hi"}]})
    assert api.status_code == 401 and api.json()["error"]["code"] == "not_signed_in"


def test_accounts_are_isolated(console_gw: Gateway) -> None:
    gw = console_gw
    add_user(gw, "alice", "alice-password", credit="5")
    add_user(gw, "bob", "bob-password", credit="5")
    bob_key = gw.key(account="bob")
    raw = gw.client(bob_key).chat.completions.with_raw_response.create(
        model="demo", max_tokens=10, messages=[{"role": "user", "content": "bob's secret"}])
    bob_rid = raw.headers["x-request-id"]
    gw.wait_usage(1, id=bob_rid)
    alice, csrf = http_session(gw, "alice", "alice-password")
    assert bob_rid not in alice.get("/console/usage").text
    assert bob_rid not in alice.get("/console/usage?account=all").text  # not an admin
    assert bob_rid not in alice.get("/console/usage.csv").text
    assert alice.get(f"/console/api/usage/{bob_rid}").status_code == 404
    bob_key_id = gw.key_ids[bob_key]
    r = alice.post(f"/console/keys/{bob_key_id}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 404
    assert gw.client(bob_key).models.list().data  # still works
    # The admin sees every account's usage when asking for it.
    admin, _ = http_session(gw, "admin", admin_password(gw))
    assert bob_rid in admin.get("/console/usage?account=all").text
    # Bad filter values are a clear 400, not a crash.
    r = alice.get("/console/usage?from=yesterday")
    assert r.status_code == 400 and "YYYY-MM-DD" in r.text


def test_playground_refuses_bad_input_without_billing(console_gw: Gateway) -> None:
    gw = console_gw
    client, csrf = http_session(gw, "admin", admin_password(gw))
    h = {"x-csrf-token": csrf}
    cases = [
        (b"{not json", 400),
        (b'{"model": "demo", "messages": []}', 400),
        (b'{"model": "demo", "messages": [{"role": "system", "content": "x"}]}', 400),
        (b'{"model": "demo", "messages": [{"role": "user", "content": "x"}], '
         b'"max_tokens": "ten"}', 400),
        (b'{"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}', 404),
    ]
    for body, status in cases:
        r = client.post("/console/api/playground", content=body,
                        headers={**h, "content-type": "application/json"})
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]["message"]
    assert gw.usage() == []
    assert csrf_of(client.get("/console/playground").text) == csrf


def test_password_guessing_is_throttled(console_gw: Gateway) -> None:
    gw = console_gw
    password = admin_password(gw)
    client = httpx.Client(base_url=gw.base_url)

    def attempt(pw: str) -> httpx.Response:
        form = client.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        return client.post("/console/login", data={"csrf_token": token.group(1),
                                                    "name": "admin", "password": pw})

    for i in range(5):
        assert attempt(f"guess-{i}").status_code == 401
    r = attempt(password)  # even the right password waits now
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in r.text and "st_session=" not in r.headers.get(
        "set-cookie", "")
    # Another account is not locked out by admin's failures.
    add_user(gw, "erin", "erin-password")
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    r = client.post("/console/login", data={"csrf_token": token.group(1), "name": "erin",
                                            "password": "erin-password"})
    assert r.status_code == 303

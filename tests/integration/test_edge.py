"""Issue 8: header size limit, per-IP limit on failed authentications, CORS (off by default),
and the published OpenAPI document."""

from __future__ import annotations

import re
from typing import Any

import httpx
import openai
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.routing import Route

from smartoken.app import routes
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config

CHAT = {"model": "kimi-k2", "messages": [{"role": "user", "content": "hi"}]}


def test_oversized_headers_are_refused_with_431(fake: FakeUpstream, make_inproc: Any) -> None:
    gw: Gateway = make_inproc(fake_config(fake, max_header_kb=8))
    key = gw.key(credit="1")
    r = httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=15,
                   headers={"authorization": f"Bearer {key}", "x-padding": "a" * 9000})
    assert r.status_code == 431
    assert r.json()["error"]["code"] == "request_headers_too_large"
    assert r.headers["x-request-id"].startswith("req_")
    ok = httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=15,
                    headers={"authorization": f"Bearer {key}", "x-padding": "a" * 4000})
    assert ok.status_code == 200
    assert len(gw.wait_usage(1)) == 1 and len(fake.requests) == 1


def test_failed_authentications_are_limited_per_address(fake: FakeUpstream,
                                                        make_inproc: Any) -> None:
    gw: Gateway = make_inproc(fake_config(fake, auth_failures_per_minute=5))
    key = gw.key(credit="1")
    with httpx.Client(base_url=gw.base_url, timeout=15) as http:
        assert http.post("/v1/chat/completions", json=CHAT,
                         headers={"authorization": f"Bearer {key}"}).status_code == 200
        for i in range(5):
            r = http.post("/v1/chat/completions", json=CHAT,
                          headers={"authorization": f"Bearer sk-st-wrong{i:040d}"})
            assert r.status_code == 401
        r = http.post("/v1/chat/completions", json=CHAT,
                      headers={"authorization": f"Bearer sk-st-wrong{9:040d}"})
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "too_many_auth_failures"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.headers["x-request-id"].startswith("req_")
        # The address is blocked, valid key or not, until its window ends.
        blocked = http.post("/v1/chat/completions", json=CHAT,
                            headers={"authorization": f"Bearer {key}"})
        assert blocked.status_code == 429
        # Probes and scrapes are not blocked; the refusals are counted.
        assert http.get("/healthz").status_code == 200
        metrics = http.get("/metrics").text
    assert 'smartoken_requests_total{code="429",model="",route="",status="refused"} 2.0' \
        in metrics
    assert 'smartoken_requests_total{code="401",model="",route="",status="refused"} 5.0' \
        in metrics
    assert len(gw.wait_usage(1)) == 1


def test_cors_is_off_by_default(fake: FakeUpstream, make_inproc: Any) -> None:
    gw: Gateway = make_inproc(fake_config(fake))
    pre = httpx.options(gw.base_url + "/v1/chat/completions", timeout=15, headers={
        "origin": "https://app.example.com", "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    r = httpx.get(gw.base_url + "/healthz", headers={"origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_when_configured(fake: FakeUpstream, make_inproc: Any) -> None:
    gw: Gateway = make_inproc(fake_config(fake, cors_origins=["https://app.example.com"]))
    key = gw.key(credit="1")
    pre = httpx.options(gw.base_url + "/v1/chat/completions", timeout=15, headers={
        "origin": "https://app.example.com", "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-stainless-os"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    other = httpx.options(gw.base_url + "/v1/chat/completions", timeout=15, headers={
        "origin": "https://evil.example.com", "access-control-request-method": "POST"})
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    r = httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=15, headers={
        "origin": "https://app.example.com", "authorization": f"Bearer {key}"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-request-id" in r.headers["access-control-expose-headers"]


def _documented(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)  # {key_id:int} -> {key_id}


def _served() -> set[tuple[str, str]]:
    """Every (path, method) of the app but the console (``/``, ``/console…``)."""
    out: set[tuple[str, str]] = set()
    for r in routes():
        path = getattr(r, "path", "")
        if path == "/" or path.startswith("/console"):
            continue
        assert isinstance(r, Route), path  # a Mount outside the console would go unchecked
        out |= {(_documented(path), m.lower()) for m in r.methods or () if m != "HEAD"}
    return out


def _check_body(doc: dict[str, Any], operation: dict[str, Any], r: httpx.Response) -> None:
    """A JSON answer must match the schema documented for its status."""
    if not r.headers.get("content-type", "").startswith("application/json"):
        return
    content = operation["responses"][str(r.status_code)].get("content", {})
    assert "application/json" in content, (operation["operationId"], r.status_code)
    schema = {**content["application/json"]["schema"], "components": doc["components"]}
    Draft202012Validator(schema).validate(r.json())


def test_openapi_document_is_valid_and_matches_the_routes(fake: FakeUpstream,
                                                          make_inproc: Any) -> None:
    # Calls without a credential fail authentication: keep the per-address limit out of it.
    gw: Gateway = make_inproc(fake_config(fake, auth_failures_per_minute=100_000))
    r = httpx.get(gw.base_url + "/openapi.json", timeout=15)
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    served = _served()
    assert ("/v1/files/{file_id}/content", "get") in served and len(served) > 40
    undocumented = served - documented
    assert not undocumented, f"routes missing from /openapi.json: {sorted(undocumented)}"
    assert documented <= served, f"documented but not served: {sorted(documented - served)}"
    user = gw.key("app", credit="1")
    scoped = gw.key("app", rpm=100_000)  # a restricted key may not manage keys
    gw.account("ops", role="admin")
    admin = gw.key("ops")
    up = httpx.post(gw.base_url + "/v1/files", headers={"authorization": f"Bearer {user}"},
                    files={"file": ("notes.txt", b"hello", "text/plain")},
                    data={"purpose": "file-extract"}, timeout=15)
    assert up.status_code == 200, up.text
    spare = gw.key("app")  # revoked by the loop; the keys it calls with stay valid
    real = {"model_id": "kimi-k2", "name": "nope", "file_id": up.json()["id"],
            "account_id": str(gw.account("app")), "key_id": str(gw.key_ids[spare]),
            "response_id": "resp_nope", "code_id": "1", "month": "2026-11", "invite_id": "1"}
    missing = {"model_id": "no-such-model", "name": "nope", "file_id": "file-nope",
               "account_id": "999999", "key_id": "999999", "response_id": "resp_missing",
               "code_id": "999999", "month": "2026-13", "invite_id": "999999"}
    calls = _call_every_operation(gw.base_url, doc, real, [user, scoped, admin]) | \
        _call_every_operation(gw.base_url, doc, missing, [user, scoped, admin])
    seen = {status for _, _, status in calls}
    assert {200, 201, 400, 401, 403, 404} <= seen, seen  # the calls reached the handlers
    assert {s for p, k, s in calls if p.startswith("/admin/") and k == user} == {403}
    assert {200, 400, 404} <= {s for p, k, s in calls if p.startswith("/admin/") and k == admin}


def _call_every_operation(base_url: str, doc: dict[str, Any], values: dict[str, str],
                          keys: list[str]) -> set[tuple[str, str | None, int]]:
    """Call each documented operation with ``{}`` as each key and without one; every answer
    must have a documented status, and a JSON answer its documented schema."""
    calls: set[tuple[str, str | None, int]] = set()
    for path, ops in doc["paths"].items():
        url = base_url + re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        for method, operation in ops.items():
            for key in [*keys, None] if operation["security"] else [None]:
                auth = {"authorization": f"Bearer {key}"} if key else {}
                r = httpx.request(method, url, headers=auth, json={}, timeout=15)
                assert r.status_code != 405, (method, path)
                if r.status_code == 404:  # the route exists; the object does not
                    assert r.json()["error"]["code"] != "not_found", (method, path)
                assert str(r.status_code) in operation["responses"], \
                    (method, path, r.status_code, r.text[:200])
                _check_body(doc, operation, r)
                calls.add((path, key, r.status_code))
    return calls


def test_sdk_still_works_through_the_edge(fake: FakeUpstream, make_inproc: Any) -> None:
    gw: Gateway = make_inproc(fake_config(fake, cors_origins=["*"]))
    client = gw.client(gw.key(credit="1"))
    assert client.chat.completions.create(**CHAT).choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        gw.client("sk-st-nope").models.list()

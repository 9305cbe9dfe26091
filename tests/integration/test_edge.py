"""Issue 8: header size limit, per-IP limit on failed authentications, CORS (off by default),
and the published OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openapi_spec_validator import validate

from smartoken.app import routes
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config

CHAT = {"model": "kimi-k2", "messages": [{"role": "user", "content": "hi"}]}


def test_oversized_headers_are_refused_with_431(fake: FakeUpstream, make_gateway: Any) -> None:
    gw: Gateway = make_gateway(fake_config(fake, max_header_kb=8))
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
                                                        make_gateway: Any) -> None:
    gw: Gateway = make_gateway(fake_config(fake, auth_failures_per_minute=5))
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


def test_cors_is_off_by_default(fake: FakeUpstream, make_gateway: Any) -> None:
    gw: Gateway = make_gateway(fake_config(fake))
    pre = httpx.options(gw.base_url + "/v1/chat/completions", timeout=15, headers={
        "origin": "https://app.example.com", "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    r = httpx.get(gw.base_url + "/healthz", headers={"origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_when_configured(fake: FakeUpstream, make_gateway: Any) -> None:
    gw: Gateway = make_gateway(fake_config(fake, cors_origins=["https://app.example.com"]))
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
    return path.replace("{model_id:path}", "{model}")


def test_openapi_document_is_valid_and_matches_the_routes(fake: FakeUpstream,
                                                          make_gateway: Any) -> None:
    gw: Gateway = make_gateway(fake_config(fake))
    doc = httpx.get(gw.base_url + "/openapi.json", timeout=15).json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    served = {(_documented(r.path), m.lower()) for r in routes() for m in (r.methods or ())
              if m != "HEAD" and (r.path.startswith(("/v1/", "/admin/providers")))}
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    missing = served - documented
    assert not missing, f"routes missing from /openapi.json: {sorted(missing)}"
    key = gw.key(credit="1")
    auth = {"authorization": f"Bearer {key}"}
    for path, ops in doc["paths"].items():
        url = gw.base_url + path.replace("{model}", "kimi-k2").replace("{name}", "nope")
        for method in ops:
            r = httpx.request(method, url, headers=auth, json={}, timeout=15)
            assert r.status_code != 405, (method, path)
            if r.status_code == 404:
                assert r.json()["error"]["code"] != "not_found", (method, path)  # route exists
            assert str(r.status_code) in ops[method]["responses"], (method, path, r.status_code)


def test_sdk_still_works_through_the_edge(fake: FakeUpstream, make_gateway: Any) -> None:
    gw: Gateway = make_gateway(fake_config(fake, cors_origins=["*"]))
    client = gw.client(gw.key(credit="1"))
    assert client.chat.completions.create(**CHAT).choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        gw.client("sk-st-nope").models.list()

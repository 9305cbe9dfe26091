"""Issue 8: /metrics scraped before and after a known set of requests shows the deltas."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config

ROUTE = "kimi-k2:fake0/kimi-k2-upstream"


def scrape(gw: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = httpx.get(gw.base_url + "/metrics", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: dict[Any, float], name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def gw(fake: FakeUpstream, make_gateway: Any) -> Gateway:
    return make_gateway(fake_config(fake))


def test_metrics_deltas_match_the_requests_made(gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(usage={"prompt_tokens": 100, "completion_tokens": 20})
    key = gw.key(credit="10")
    key_id = str(gw.key_ids[key])
    client = gw.client(key)
    before = scrape(gw)
    msgs = [{"role": "user", "content": "hi"}]
    for _ in range(3):
        client.chat.completions.create(model="kimi-k2", messages=msgs)
    for _ in range(2):
        list(client.chat.completions.create(model="kimi-k2", messages=msgs, stream=True,
                                            stream_options={"include_usage": True}))
    with pytest.raises(openai.AuthenticationError):
        gw.client("sk-st-not-a-real-key-000000000000").models.list()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=msgs)
    fake.set(status=500)
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="kimi-k2", messages=msgs)
    rows = gw.wait_usage(6)
    after = scrape(gw)

    ok = {"model": "kimi-k2", "route": ROUTE, "status": "ok", "code": "200"}
    assert delta(before, after, "smartoken_requests_total", **ok) == 5
    assert delta(before, after, "smartoken_request_errors_total", **ok) == 0
    failed = {"model": "kimi-k2", "route": "", "status": "upstream_error", "code": "502"}
    assert delta(before, after, "smartoken_requests_total", **failed) == 1
    assert delta(before, after, "smartoken_request_errors_total", **failed) == 1
    for code in ("401", "404"):
        refused = {"model": "", "route": "", "status": "refused", "code": code}
        assert delta(before, after, "smartoken_requests_total", **refused) == 1
        assert delta(before, after, "smartoken_request_errors_total", **refused) == 1
    assert delta(before, after, "smartoken_tokens_total", model="kimi-k2", key=key_id,
                 kind="prompt") == 500
    assert delta(before, after, "smartoken_tokens_total", model="kimi-k2", key=key_id,
                 kind="completion") == 100
    billed = sum(r["cost_micro"] for r in rows)
    assert billed > 0
    assert delta(before, after, "smartoken_cost_micro_usd_total", model="kimi-k2",
                 key=key_id) == billed
    assert delta(before, after, "smartoken_request_duration_seconds_count", model="kimi-k2",
                 route=ROUTE, status="ok") == 5
    assert delta(before, after, "smartoken_time_to_first_token_seconds_count", model="kimi-k2",
                 route=ROUTE) == 2
    # Live gauges: nothing in flight now; the failing route's breaker is still closed after
    # one failure (it opens after three in a row).
    assert value(after, "smartoken_reservations_in_flight") == 0
    assert value(after, "smartoken_ledger_pending_records") >= 0
    assert value(after, "smartoken_route_breaker_state", route=ROUTE) == 0
    fake.set(status=503)
    for _ in range(2):
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="kimi-k2", messages=msgs)
    assert value(scrape(gw), "smartoken_route_breaker_state", route=ROUTE) == 2
    # No secret, and no part of one, is a label.
    text = httpx.get(gw.base_url + "/metrics").text
    assert key not in text and key[:12] not in text and "upstream-secret" not in text


def test_metrics_aggregate_across_workers(fake: FakeUpstream, make_gateway: Any) -> None:
    gw = make_gateway(fake_config(fake), workers=2)
    fake.set(usage={"prompt_tokens": 10, "completion_tokens": 5})
    key = gw.key(credit="10")
    before = scrape(gw)
    n = 12
    with httpx.Client(timeout=30) as http:  # a new connection per request spreads the load
        for _ in range(n):
            r = http.post(gw.base_url + "/v1/chat/completions",
                          headers={"authorization": f"Bearer {key}", "connection": "close"},
                          json={"model": "kimi-k2", "messages": [{"role": "user",
                                                                  "content": "hi"}]})
            assert r.status_code == 200
    gw.wait_usage(n)
    ok = {"model": "kimi-k2", "route": ROUTE, "status": "ok", "code": "200"}
    for _ in range(5):  # every worker's scrape reports the sum over all workers
        assert delta(before, scrape(gw), "smartoken_requests_total", **ok) == n

"""Issue 3: route pools that do not drop requests, driven through the openai SDK against several
fake upstreams over HTTP, each failing in a chosen way."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from smartoken import tokens
from smartoken.catalog.builtin import builtin_catalog
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config

CATALOG = builtin_catalog()
MSG = [{"role": "user", "content": "hello"}]


def pool(*fakes: FakeUpstream, priorities: tuple[int, ...] = (), weights: tuple[int, ...] = (),
         model: str = "kimi-k2", first_byte: float = 5, idle: float = 5,
         **extra: Any) -> dict[str, Any]:
    routes = [{"provider": f"fake{i}", "upstream_model": f"up-{i}",
               "priority": priorities[i] if priorities else 10 - i,
               "weight": weights[i] if weights else 1} for i in range(len(fakes))]
    cfg = fake_config(*fakes, models={model: {"routes": routes}}, **extra)
    for p in cfg["providers"].values():
        p["timeouts"]["first_byte"] = first_byte
        p["timeouts"]["idle"] = idle
    return cfg


def admin_routes(gw: Gateway, key: str) -> dict[str, dict[str, Any]]:
    r = httpx.get(gw.base_url + "/admin/routes", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return {row["id"]: row for row in r.json()["data"]}


def admin_key(gw: Gateway) -> str:
    gw.account("root", "10", role="admin")
    return gw.key(account="root")


def attempts(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(rec["attempts"]) if rec["attempts"] else []


@pytest.mark.parametrize("fault", [
    {"status": 500},
    {"status": 429, "retry_after": 7},
    {"out_of_balance": True, "dialect": "moonshot"},
    {"hang": True},
    {"first_byte_delay": 3},
])
def test_primary_fails_client_gets_200_from_secondary(make_fake: Any, make_inproc: Any,
                                                      fault: dict[str, Any]) -> None:
    bad, good = make_fake(**fault), make_fake(content="from the secondary")
    gw = make_inproc(pool(bad, good, first_byte=1))
    key = gw.key(credit="10")
    client = gw.client(key)
    resp = client.chat.completions.create(model="kimi-k2", messages=MSG)
    assert resp.choices[0].message.content == "from the secondary"
    chunks = list(client.chat.completions.create(model="kimi-k2", messages=MSG, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "from the secondary"
    recs = gw.wait_usage(2)
    assert [r["status"] for r in recs] == ["ok", "ok"]
    assert all(r["provider"] == "fake1" and r["http_status"] == 200 for r in recs)
    chain = attempts(recs[0])
    assert [a["route"] for a in chain] == ["kimi-k2:fake0/up-0", "kimi-k2:fake1/up-1"]
    assert chain[-1]["kind"] == "ok"
    health = admin_routes(gw, key)["kimi-k2:fake0/up-0"]
    assert health["failures"] >= 1 and health["last_error"]
    if fault.get("retry_after"):
        assert health["state"] == "open" and 3 < health["cooldown_remaining_s"] <= 7
    if fault.get("out_of_balance"):  # out of balance: cooled down long, never the client's 429
        assert health["state"] == "open" and health["cooldown_remaining_s"] > 300
        assert len(bad.requests) == 1  # the second request did not try it again


def test_every_route_fails_one_clear_5xx(make_fake: Any, make_inproc: Any) -> None:
    a, b = make_fake(status=500), make_fake(status=503)
    gw = make_inproc(pool(a, b))
    client = gw.client(gw.key(credit="10"))
    with pytest.raises(openai.InternalServerError) as exc:
        client.chat.completions.create(model="kimi-k2", messages=MSG)
    assert exc.value.status_code == 502
    err = exc.value.body
    assert err["code"] == "upstream_failed" and err["type"] == "upstream_error"  # type: ignore[index]
    assert "kimi-k2:fake0/up-0" in err["message"] and "kimi-k2:fake1/up-1" in err["message"]  # type: ignore[index]
    a.reset(hang=True)
    b.reset(hang=True)
    gw2 = make_inproc(pool(a, b, first_byte=0.5))
    with pytest.raises(openai.APIStatusError) as exc2:
        gw2.client(gw2.key(credit="10")).chat.completions.create(model="kimi-k2", messages=MSG,
                                                                stream=True)
    assert exc2.value.status_code == 504
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "upstream_error" and rec["cost_micro"] == 0
    assert [x["route"] for x in attempts(rec)] == ["kimi-k2:fake0/up-0", "kimi-k2:fake1/up-1"]
    assert gw.sql("SELECT * FROM wallet_transactions WHERE kind = 'debit'") == []


def test_client_error_is_returned_as_is_without_fallback(make_fake: Any,
                                                         make_inproc: Any) -> None:
    bad = make_fake(status=400, error_body={"error": {
        "message": "Invalid request: messages too long", "type": "invalid_request_error",
        "code": "context_length_exceeded"}})
    other = make_fake()
    cfg = pool(bad, other)
    cfg["models"]["kimi-k2"]["fallbacks"] = ["deepseek-chat"]
    cfg["models"]["deepseek-chat"] = {"routes": [{"provider": "fake1"}]}
    gw = make_inproc(cfg)
    with pytest.raises(openai.BadRequestError) as exc:
        gw.client(gw.key(credit="10")).chat.completions.create(model="kimi-k2", messages=MSG)
    assert exc.value.body["code"] == "context_length_exceeded"  # type: ignore[index]
    assert "messages too long" in exc.value.body["message"]  # type: ignore[index]
    assert other.requests == []
    health = admin_routes(gw, admin_key(gw))
    assert health["kimi-k2:fake0/up-0"]["state"] == "closed"  # the client's fault, not the route's


def test_fallback_model_answers_and_is_billed_at_its_own_price(make_fake: Any,
                                                               make_inproc: Any) -> None:
    kimi_a, kimi_b, ds = make_fake(status=500), make_fake(status=502), make_fake(
        content="deepseek here", usage={"prompt_tokens": 1000, "completion_tokens": 200})
    cfg = fake_config(kimi_a, kimi_b, ds, models={
        "kimi-k2": {"fallbacks": ["deepseek-chat"],
                    "routes": [{"provider": "fake0", "priority": 10},
                               {"provider": "fake1", "priority": 5}]},
        "deepseek-chat": {"output_price": "9.00",
                          "routes": [{"provider": "fake2", "upstream_model": "deepseek-v3"}]}})
    gw = make_inproc(cfg)
    client = gw.client(gw.key(credit="10"))
    resp = client.chat.completions.create(model="kimi-k2", messages=MSG, max_tokens=100)
    assert resp.choices[0].message.content == "deepseek here"
    assert resp.model == "kimi-k2"  # the client sees the model it asked for
    assert ds.requests[-1]["model"] == "deepseek-v3" and ds.requests[-1]["max_tokens"] == 100
    [rec] = gw.wait_usage(1)
    assert rec["requested_model"] == "kimi-k2" and rec["model"] == "deepseek-chat"
    assert rec["provider"] == "fake2"
    expected = CATALOG.models["deepseek-chat"].price.input * 1000 // 1_000_000 + 9 * 200
    assert rec["cost_micro"] == expected == 150 + 1800  # the file's price replaces the windows
    assert [a["route"] for a in attempts(rec)] == [
        "kimi-k2:fake0/kimi-k2", "kimi-k2:fake1/kimi-k2", "deepseek-chat:fake2/deepseek-v3"]
    [debit] = gw.sql("SELECT * FROM wallet_transactions WHERE kind = 'debit'")
    assert debit["amount_micro"] == -expected


def test_fallback_reservation_covers_the_dearest_model(make_fake: Any,
                                                       make_inproc: Any) -> None:
    bad, ds = make_fake(status=500), make_fake()
    cfg = fake_config(bad, ds, models={
        "kimi-k2": {"fallbacks": ["deepseek-chat"], "routes": [{"provider": "fake0"}]},
        "deepseek-chat": {"output_price": "100.00", "routes": [{"provider": "fake1"}]}})
    gw = make_inproc(cfg)
    # kimi-k2 alone: 1000 x $2.50/1M = $0.0025; with the fallback it may cost $0.10.
    key = gw.key(account="poor", credit="0.05")
    with pytest.raises(openai.APIStatusError) as exc:
        gw.client(key).chat.completions.create(model="kimi-k2", messages=MSG, max_tokens=1000)
    assert exc.value.status_code == 402
    assert bad.requests == [] and ds.requests == []


def test_breaker_opens_skips_probes_and_recovers(make_fake: Any, make_inproc: Any) -> None:
    flaky, backup = make_fake(status=500), make_fake(content="backup")
    gw = make_inproc(pool(flaky, backup, breaker={"consecutive_failures": 3, "cooldown": 1.5}))
    key = admin_key(gw)
    client = gw.client(key)
    rid = "kimi-k2:fake0/up-0"
    for _ in range(3):
        assert client.chat.completions.create(model="kimi-k2", messages=MSG) \
            .choices[0].message.content == "backup"
    assert len(flaky.requests) == 3
    assert admin_routes(gw, key)[rid]["state"] == "open"
    for _ in range(3):  # open: skipped, not tried
        client.chat.completions.create(model="kimi-k2", messages=MSG)
    assert len(flaky.requests) == 3 and len(backup.requests) == 6
    flaky.set(content="recovered")
    deadline = time.monotonic() + 10
    while admin_routes(gw, key)[rid]["cooldown_remaining_s"] > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    resp = client.chat.completions.create(model="kimi-k2", messages=MSG)  # the probe
    assert resp.choices[0].message.content == "recovered"
    row = admin_routes(gw, key)[rid]
    assert row["state"] == "closed" and row["successes"] == 1 and row["failures"] == 3
    assert row["p50_latency_ms"] is not None
    # half-open probe fails -> open again at once
    flaky.set(status=500)
    for _ in range(3):
        client.chat.completions.create(model="kimi-k2", messages=MSG)
    assert admin_routes(gw, key)[rid]["state"] == "open"


def test_lower_tier_only_when_upper_tier_is_down(make_fake: Any, make_inproc: Any) -> None:
    up_a, up_b, low = make_fake(content="A"), make_fake(content="B"), make_fake(content="low")
    gw = make_inproc(pool(up_a, up_b, low, priorities=(10, 10, 1)))
    client = gw.client(gw.key(credit="10"))
    seen = {client.chat.completions.create(model="kimi-k2", messages=MSG)
            .choices[0].message.content for _ in range(30)}
    assert seen == {"A", "B"} and low.requests == []
    up_a.set(status=500)
    up_b.set(status=503)
    assert client.chat.completions.create(model="kimi-k2", messages=MSG) \
        .choices[0].message.content == "low"


def test_weights_hold_live(make_fake: Any, make_inproc: Any) -> None:
    a, b = make_fake(), make_fake()
    gw = make_inproc(pool(a, b, priorities=(5, 5), weights=(1, 3)))
    client = gw.client(gw.key(credit="10"))
    n = 120
    for _ in range(n):
        client.chat.completions.create(model="kimi-k2", messages=MSG)
    # expected 90 on b; sd = sqrt(120 * 0.25 * 0.75) = 4.7: +-4 sd
    assert 71 <= len(b.requests) <= 109 and len(a.requests) + len(b.requests) == n


def test_mid_stream_cut_ends_with_error_event_and_partial_bill(make_fake: Any,
                                                               make_inproc: Any) -> None:
    text = " ".join(f"word{i}" for i in range(40))
    cut, backup = make_fake(content=text, chunks=20, cut_after=6), make_fake()
    gw = make_inproc(pool(cut, backup))
    key = gw.key(credit="10")
    r = httpx.post(gw.base_url + "/v1/chat/completions",
                   headers={"Authorization": f"Bearer {key}"},
                   json={"model": "kimi-k2", "stream": True, "messages": MSG}, timeout=30)
    assert r.status_code == 200
    events = [e.removeprefix("data: ") for e in r.text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    err = json.loads(events[-2])["error"]
    assert err["type"] == "upstream_error" and "after it started" in err["message"]
    delivered = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                        for e in events[:-2])
    assert delivered == " ".join(text.split(" ")[:12]) + " "
    assert backup.requests == []  # bytes were out: no silent switch mid-answer
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "partial" and rec["usage_estimated"]
    assert rec["completion_tokens"] > 0 and rec["cost_micro"] > 0


def test_malformed_chunk_mid_stream(make_fake: Any, make_inproc: Any) -> None:
    bad = make_fake(malformed_after=3)
    gw = make_inproc(pool(bad))
    client = gw.client(gw.key(credit="10"))
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="kimi-k2", messages=MSG, stream=True):
            pass
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "partial" and "malformed" in rec["error"]


def test_chunks_read_with_a_failure_reach_the_client_and_are_billed(make_fake: Any,
                                                                     make_inproc: Any) -> None:
    """The fake writes 5 chunks and a broken one back to back (usually one read for the
    gateway, which relays a read's chunks in one write): the 5 still reach the client before
    the error event, and the record bills exactly what they carried."""
    bad = make_fake(malformed_after=5, chunks=10,
                    content="one two three four five six seven eight nine ten")
    gw = make_inproc(pool(bad))
    key = gw.key(credit="10")
    with httpx.stream("POST", gw.base_url + "/v1/chat/completions",
                      headers={"Authorization": f"Bearer {key}"}, timeout=30,
                      json={"model": "kimi-k2", "stream": True, "messages": MSG}) as r:
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in chunks if c.get("choices"))
    assert text == "one two three four five ", events
    assert "error" in chunks[-1] and events[-1] == "[DONE]"
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "partial" and "malformed" in rec["error"]
    assert rec["completion_tokens"] == tokens.count_text(text)


def test_client_disconnect_cancels_upstream(make_fake: Any, make_inproc: Any) -> None:
    slow = make_fake(chunks=100, chunk_delay=0.1)
    gw = make_inproc(pool(slow))
    key = gw.key(credit="10")
    with httpx.stream("POST", gw.base_url + "/v1/chat/completions",
                      headers={"Authorization": f"Bearer {key}"}, timeout=30,
                      json={"model": "kimi-k2", "stream": True, "messages": MSG}) as r:
        got = 0
        for line in r.iter_lines():
            got += line.startswith("data: ")
            if got >= 3:
                break
    closed_at = time.monotonic()
    while slow.active_streams and time.monotonic() - closed_at < 5:
        time.sleep(0.02)
    took = time.monotonic() - closed_at
    assert slow.active_streams == 0 and slow.cancelled == 1
    assert took < 1.0, f"upstream still streaming {took:.2f} s after the client left"
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "client_closed" and rec["completion_tokens"] > 0


def test_idle_gap_mid_stream_times_out_as_partial(make_fake: Any, make_inproc: Any) -> None:
    stalls = make_fake(chunks=10, chunk_delay=3)
    gw = make_inproc(pool(stalls, idle=1))
    client = gw.client(gw.key(credit="10"))
    started = time.monotonic()
    with pytest.raises(openai.APIError) as exc:
        for _ in client.chat.completions.create(model="kimi-k2", messages=MSG, stream=True):
            pass
    assert "idle" in str(exc.value) and time.monotonic() - started < 10  # whole stream: 30 s
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "partial" and "idle" in rec["error"]


def test_a_single_route_model_is_tried_after_its_breaker_opens(make_fake: Any,
                                                               make_inproc: Any) -> None:
    """Issue 12 item 14: three mid-stream cuts open the only route's breaker. Before, every
    request then got 503 "Tried: none available" for the 30 s cooldown; in panic mode the
    route whose cooldown ends first is tried, and its success closes the breaker."""
    fake = make_fake(chunks=10, cut_after=3)
    gw = make_inproc(fake_config(fake))
    key = admin_key(gw)
    client = gw.client(key)
    for _ in range(3):
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model="kimi-k2", messages=MSG, stream=True,
                                                max_tokens=50))
    assert admin_routes(gw, key)["kimi-k2:fake0/kimi-k2-upstream"]["state"] == "open"
    fake.set(chunks=10)
    resp = client.chat.completions.create(model="kimi-k2", messages=MSG, max_tokens=50)
    assert resp.choices[0].message.content and len(fake.requests) == 4
    recs = gw.wait_usage(4)
    assert [r["status"] for r in recs] == ["partial"] * 3 + ["ok"]
    assert admin_routes(gw, key)["kimi-k2:fake0/kimi-k2-upstream"]["state"] == "closed"

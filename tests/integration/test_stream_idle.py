"""The per-read idle timeout of upstream streams (one timer per stream, ``IdleTimer``)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config


def _config(fake: FakeUpstream, idle: float) -> dict[str, Any]:
    cfg = fake_config(fake)
    cfg["providers"]["fake0"]["timeouts"]["idle"] = idle
    return cfg


def _events(gw: Gateway, key: str) -> list[Any]:
    body = {"model": "kimi-k2", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    with httpx.stream("POST", gw.base_url + "/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {key}"}) as r:
        assert r.status_code == 200
        lines = [ln[6:] for ln in r.iter_lines() if ln.startswith("data: ")]
    return [ln if ln == "[DONE]" else json.loads(ln) for ln in lines]


def test_stalled_stream_ends_with_an_idle_error_and_bills_what_was_delivered(
        fake: FakeUpstream, make_inproc: Any) -> None:
    gw = make_inproc(_config(fake, idle=0.5))
    fake.set(chunks=3, chunk_delay=3.0, content="one two three")
    events = _events(gw, gw.key(credit="10"))
    assert events[-1] == "[DONE]"
    err = events[-2]["error"]
    assert "idle for 0.5s" in err["message"]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "partial" and "idle" in rec["error"]
    assert rec["usage_estimated"]


def test_gaps_under_the_idle_limit_never_time_out_however_long_the_stream(
        fake: FakeUpstream, make_inproc: Any) -> None:
    gw = make_inproc(_config(fake, idle=1.0))
    text = " ".join(f"w{i}" for i in range(6))
    fake.set(chunks=6, chunk_delay=0.4, content=text)  # 2.4 s in all, 0.4 s between chunks
    events = _events(gw, gw.key(credit="10"))
    assert events[-1] == "[DONE]"
    assert not any("error" in e for e in events[:-1])
    got = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1]
                  if e.get("choices"))
    assert got == text
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "ok"


def test_no_first_byte_in_time_is_a_504_for_unary_and_stream_calls(
        fake: FakeUpstream, make_inproc: Any) -> None:
    cfg = _config(fake, idle=5)
    cfg["providers"]["fake0"]["timeouts"]["first_byte"] = 0.5
    gw = make_inproc(cfg)
    fake.set(first_byte_delay=3)
    key = gw.key(credit="10")
    for stream in (False, True):
        body = {"model": "kimi-k2", "stream": stream,
                "messages": [{"role": "user", "content": "x"}]}
        r = httpx.post(gw.base_url + "/v1/chat/completions", json=body, timeout=30,
                       headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 504, r.text
        assert "no response within 0.5s" in r.json()["error"]["message"]
    recs = gw.wait_usage(2)
    assert [r["status"] for r in recs] == ["upstream_error", "upstream_error"]
    assert all(r["cost_micro"] == 0 for r in recs)

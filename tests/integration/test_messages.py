"""Issue 13: Anthropic's Messages API (``/v1/messages``) through the official ``anthropic`` SDK,
translated to an OpenAI-dialect fake upstream or passed natively to an Anthropic-dialect one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from smartoken.catalog.builtin import builtin_catalog
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config

KIMI = builtin_catalog().models["kimi-k2"]
CAPTURED = Path(__file__).parents[1] / "fakes" / "captured" / "claude_code_2.1.197_request.json"


@pytest.fixture
def gw(fake: FakeUpstream, make_inproc: Any) -> Gateway:
    return make_inproc(fake_config(fake))


def client(gw: Gateway, key: str, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=gw.base_url, max_retries=0, **kw)


def sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        out.append((lines["event"], json.loads(lines["data"])))
    return out


USER = [{"role": "user", "content": "hello"}]


# ---------------------------------------------------------------- translated (OpenAI dialect)


def test_create_is_translated_billed_and_recorded(gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(content="Kimi reads long documents.",
             usage={"prompt_tokens": 1200, "completion_tokens": 345,
                    "prompt_tokens_details": {"cached_tokens": 200}})
    msg = client(gw, gw.key(credit="10")).messages.create(
        model="kimi-k2", max_tokens=300, messages=USER, system="Be brief.",
        stop_sequences=["END"], metadata={"user_id": "u-1"}, extra_body={"temperature": 0.5})
    assert msg.type == "message" and msg.role == "assistant" and msg.model == "kimi-k2"
    assert msg.content[0].type == "text" and msg.content[0].text == "Kimi reads long documents."
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens,
            msg.usage.output_tokens) == (1000, 200, 345)
    sent = fake.requests[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "hello"}]
    assert sent["max_tokens"] == 300 and sent["stop"] == ["END"] and sent["user"] == "u-1"
    assert sent["temperature"] == 0.5
    [rec] = gw.wait_usage(1)
    assert rec["protocol"] == "messages" and rec["status"] == "ok"
    assert rec["cached_tokens"] == 200
    assert rec["cost_micro"] == KIMI.price.cost(1200, 345, 200)


def test_x_api_key_or_bearer_and_anthropic_headers(gw: Gateway, fake: FakeUpstream) -> None:
    key = gw.key(credit="10")
    body = {"model": "kimi-k2", "max_tokens": 50, "messages": USER}
    for headers in ({"x-api-key": key}, {"authorization": f"Bearer {key}"},
                    {"x-api-key": key, "anthropic-version": "2023-06-01",
                     "anthropic-beta": "interleaved-thinking-2025-05-14,context-1m"}):
        r = httpx.post(gw.base_url + "/v1/messages?beta=true", json=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["type"] == "message"
    with pytest.raises(anthropic.AuthenticationError) as exc:
        client(gw, "sk-st-wrong").messages.create(model="kimi-k2", max_tokens=5, messages=USER)
    assert exc.value.body["type"] == "error"  # type: ignore[index]
    assert exc.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_stream_emits_anthropics_exact_event_sequence(gw: Gateway, fake: FakeUpstream) -> None:
    text = " ".join(f"w{i}" for i in range(12))
    fake.set(content=text, chunks=4, reasoning="Think first.",
             usage={"prompt_tokens": 50, "completion_tokens": 40})
    key = gw.key(credit="10")
    r = httpx.post(gw.base_url + "/v1/messages", headers={"x-api-key": key}, json={
        "model": "kimi-k2", "max_tokens": 100, "stream": True, "messages": USER,
        "thinking": {"type": "enabled", "budget_tokens": 2048}})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    kinds = [k for k, _ in events]
    assert all(k == d["type"] for k, d in events)
    assert kinds[:2] == ["message_start", "ping"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    starts = [d["content_block"]["type"] for k, d in events if k == "content_block_start"]
    assert starts == ["thinking", "text"]
    # every block is opened, deltas, then closed, in index order
    body = [(k, d.get("index")) for k, d in events if k.startswith("content_block")]
    assert body[0] == ("content_block_start", 0) and ("content_block_stop", 0) in body
    assert body.index(("content_block_stop", 0)) < body.index(("content_block_start", 1))
    assert body[-1] == ("content_block_stop", 1)
    deltas = [d["delta"] for k, d in events if k == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == "Think first."
    assert "".join(d.get("text", "") for d in deltas) == text
    start = events[0][1]["message"]
    assert start["model"] == "kimi-k2" and start["role"] == "assistant"
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "end_turn"
    assert final["usage"]["output_tokens"] == 40 and final["usage"]["input_tokens"] == 50
    assert fake.requests[-1]["reasoning_effort"] == "low"  # 2048 budget tokens
    # the SDK's stream helper assembles the same message
    with client(gw, key).messages.stream(model="kimi-k2", max_tokens=100,
                                         messages=USER) as stream:
        msg = stream.get_final_message()
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[1].text == text and msg.usage.output_tokens == 40  # type: ignore[union-attr]
    recs = gw.wait_usage(2)
    assert all(r["protocol"] == "messages" and r["stream"] for r in recs)


def test_tools_round_trip(gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(tool_call={"name": "get_weather", "arguments": '{"city": "Beijing"}'})
    c = client(gw, gw.key(credit="10"))
    tools = [{"name": "get_weather", "description": "Weather of a city",
              "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                               "type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}},
             {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
    msg = c.messages.create(model="kimi-k2", max_tokens=200, messages=USER, tools=tools,
                            tool_choice={"type": "any"})  # type: ignore[arg-type]
    assert msg.stop_reason == "tool_use"
    [use] = [b for b in msg.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Beijing"}
    sent = fake.requests[-1]
    assert sent["tool_choice"] == "required"
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]  # the server tool is dropped, $schema too
    # stream: the call arrives as tool_use + input_json_delta
    with c.messages.stream(model="kimi-k2", max_tokens=200, messages=USER,
                           tools=tools) as stream:  # type: ignore[arg-type]
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert "input_json" in kinds or "content_block_delta" in kinds
    [streamed] = [b for b in final.content if b.type == "tool_use"]
    assert streamed.input == {"city": "Beijing"} and final.stop_reason == "tool_use"
    # the result goes back
    fake.set(content="Sunny in Beijing.")
    answer = c.messages.create(model="kimi-k2", max_tokens=200, tools=tools,  # type: ignore[arg-type]
                               messages=[*USER, {"role": "assistant", "content": msg.content},
                                         {"role": "user", "content": [
                                             {"type": "tool_result", "tool_use_id": use.id,
                                              "content": [{"type": "text", "text": "25C"}]},
                                             {"type": "text", "text": "and tomorrow?"}]}])
    assert answer.content[0].text == "Sunny in Beijing."  # type: ignore[union-attr]
    sent = fake.requests[-1]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == use.id
    assert sent[2] == {"role": "tool", "tool_call_id": use.id, "content": "25C"}
    assert sent[3] == {"role": "user", "content": "and tomorrow?"}


def test_thinking_maps_to_reasoning_and_back(gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(content="42", reasoning="Six times seven.")
    c = client(gw, gw.key(credit="10"))
    msg = c.messages.create(model="kimi-k2", max_tokens=20000, messages=USER,
                            thinking={"type": "enabled", "budget_tokens": 16384})
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == "Six times seven."  # type: ignore[union-attr]
    assert fake.requests[-1]["reasoning_effort"] == "high"
    c.messages.create(model="kimi-k2", max_tokens=100, messages=USER,
                      thinking={"type": "disabled"})
    assert fake.requests[-1]["reasoning_effort"] == "none"
    # a thinking block sent back is carried as reasoning_content (tool-call turns need it)
    c.messages.create(model="kimi-k2", max_tokens=100, messages=[
        *USER, {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Six times seven.", "signature": "x"},
            {"type": "text", "text": "42"}]}, {"role": "user", "content": "sure?"}])
    assert fake.requests[-1]["messages"][1] == {"role": "assistant", "content": "42",
                                                "reasoning_content": "Six times seven."}


def test_count_tokens(gw: Gateway, fake: FakeUpstream) -> None:
    c = client(gw, gw.key(credit="10"))
    small = c.messages.count_tokens(model="kimi-k2", messages=USER)
    big = c.messages.count_tokens(model="kimi-k2", system="You are terse. " * 50, messages=USER,
                                  tools=[{"name": "f", "input_schema": {"type": "object"}}])
    assert 0 < small.input_tokens < big.input_tokens
    with pytest.raises(anthropic.NotFoundError) as exc:
        c.messages.count_tokens(model="nope", messages=USER)
    assert exc.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert fake.requests == [] and gw.usage() == []  # free: nothing routed or recorded


def test_errors_in_anthropics_shape(gw: Gateway, fake: FakeUpstream) -> None:
    key = gw.key(credit="10")
    c = client(gw, key)
    with pytest.raises(anthropic.NotFoundError):
        c.messages.create(model="nope", max_tokens=5, messages=USER)
    with pytest.raises(anthropic.BadRequestError) as bad:
        c.messages.create(model="kimi-k2", max_tokens=5,
                          messages=[{"role": "tool", "content": "x"}])  # type: ignore[list-item]
    assert bad.value.body == {"type": "error", "error": {  # type: ignore[comparison-overlap]
        "type": "invalid_request_error",
        "message": "messages.0.role: Input should be 'user' or 'assistant'"}}
    r = httpx.post(gw.base_url + "/v1/messages", headers={"x-api-key": key},
                   json={"model": "kimi-k2", "messages": USER})
    assert r.status_code == 400 and r.json()["error"]["message"] == "max_tokens: Field required"
    fake.set(status=500)
    with pytest.raises(anthropic.InternalServerError) as up:
        c.messages.create(model="kimi-k2", max_tokens=5, messages=USER)
    assert up.value.status_code in (502, 503)
    assert up.value.body["error"]["type"] in ("api_error", "overloaded_error")  # type: ignore[index]
    fake.set()
    broke = client(gw, gw.key(account="poor"))
    with pytest.raises(anthropic.APIStatusError) as poor:
        broke.messages.create(model="kimi-k2", max_tokens=5, messages=USER)
    assert poor.value.status_code == 402
    assert poor.value.body["error"]["type"] == "billing_error"  # type: ignore[index]


def test_stream_cut_midway_ends_with_error_event_and_bills_delivered(
        gw: Gateway, fake: FakeUpstream) -> None:
    text = " ".join(f"word{i}" for i in range(40))
    fake.set(content=text, chunks=20, cut_after=5)
    r = httpx.post(gw.base_url + "/v1/messages", headers={"x-api-key": gw.key(credit="10")},
                   json={"model": "kimi-k2", "max_tokens": 100, "stream": True,
                         "messages": USER})
    events = sse_events(r.text)
    assert r.status_code == 200 and events[0][0] == "message_start"
    kind, err = events[-1]
    assert kind == "error" and err["type"] == "error"
    assert err["error"]["type"] == "api_error" and "failed after it started" in \
        err["error"]["message"]
    assert "message_stop" not in [k for k, _ in events]
    delivered = "".join(d["delta"].get("text", "") for k, d in events
                        if k == "content_block_delta")
    assert delivered and delivered != text
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "partial" and rec["usage_estimated"]
    assert 0 < rec["completion_tokens"] < 40 and rec["cost_micro"] > 0
    assert rec["protocol"] == "messages"


def test_claude_code_request_shape_is_served(gw: Gateway, fake: FakeUpstream) -> None:
    """What Claude Code 2.1.197 sends (captured against a logging server): system blocks
    with cache_control, a system message at the end, 2020-12 schemas, adaptive thinking,
    context_management, output_config and max_tokens 32000 over kimi-k2's 8192."""
    captured = json.loads(CAPTURED.read_text())
    body = captured["body"]
    assert body["max_tokens"] == 32000 and body["messages"][-1]["role"] == "system"
    key = gw.key(credit="10")
    r = httpx.post(gw.base_url + captured["path"], json=body,
                   headers={**captured["headers"], "authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    events = sse_events(r.text)
    assert events[-1][0] == "message_stop"
    sent = fake.requests[-1]
    assert sent["max_tokens"] == KIMI.max_output == 8192  # lowered, not refused
    assert sent["messages"][0]["role"] == "system" and sent["messages"][-1]["role"] == "system"
    assert len(sent["tools"]) == len(body["tools"])
    assert all("$schema" not in t["function"]["parameters"] for t in sent["tools"])
    for name in ("context_management", "output_config", "thinking", "metadata", "system"):
        assert name not in sent


# ---------------------------------------------------------------- native (Anthropic dialect)

CACHE_USAGE = {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 50,
               "cache_creation_input_tokens": 30}
SYSTEM_BLOCKS = [{"type": "text", "text": "You are a coding agent."},
                 {"type": "text", "text": "Long stable rules.",
                  "cache_control": {"type": "ephemeral"}}]
HISTORY = [{"role": "user", "content": "hello"},
           {"role": "assistant", "content": [
               {"type": "thinking", "thinking": "Earlier thought.", "signature": "sig-earlier"},
               {"type": "text", "text": "Hi."}]},
           {"role": "user", "content": [{"type": "text", "text": "go on",
                                         "cache_control": {"type": "ephemeral"}}]}]


@pytest.fixture
def native(make_fake: Any, make_inproc: Any) -> tuple[Gateway, FakeUpstream]:
    fake = make_fake(dialect="anthropic")
    return make_inproc(fake_config(fake)), fake


def test_native_upstream_gets_the_clients_request_and_its_answer_passes_through(
        native: tuple[Gateway, FakeUpstream]) -> None:
    gw, fake = native
    fake.set(dialect="anthropic", reasoning="Deep thought.", content="Done.", usage=CACHE_USAGE)
    key = gw.key(credit="10")
    msg = client(gw, key).messages.create(
        model="kimi-k2", max_tokens=2000, system=SYSTEM_BLOCKS,  # type: ignore[arg-type]
        messages=HISTORY, thinking={"type": "enabled", "budget_tokens": 1024},  # type: ignore[arg-type]
        extra_body={"context_management": {"edits": []}})
    sent, headers = fake.requests[-1], fake.headers[-1]
    assert headers["x-api-key"] == "upstream-secret-0" and "authorization" not in {
        h.lower() for h in headers}
    assert sent["system"] == SYSTEM_BLOCKS and sent["messages"] == HISTORY  # markers survive
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent["context_management"] == {"edits": []}
    assert sent["model"] == "kimi-k2-upstream" and sent["max_tokens"] == 2000
    assert msg.model == "kimi-k2" and msg.id == "msg_fake1"
    assert msg.content[0].type == "thinking" and msg.content[0].signature == "sig"
    assert msg.usage.cache_read_input_tokens == 50
    assert msg.usage.cache_creation_input_tokens == 30
    [rec] = gw.wait_usage(1)
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["cache_write_tokens"],
            rec["completion_tokens"]) == (180, 50, 30, 20)
    assert rec["cost_micro"] == KIMI.price.cost(180, 20, 50, 30)
    assert rec["protocol"] == "messages"


def test_native_stream_passes_every_event_through(native: tuple[Gateway, FakeUpstream]) -> None:
    gw, fake = native
    fake.set(dialect="anthropic", reasoning="Deep thought.", content="One two three",
             usage=CACHE_USAGE)
    key = gw.key(credit="10")
    r = httpx.post(gw.base_url + "/v1/messages", headers={"x-api-key": key}, json={
        "model": "kimi-k2", "max_tokens": 2000, "stream": True, "system": SYSTEM_BLOCKS,
        "messages": [*HISTORY[:2], {"role": "system", "content": "reminder"}, HISTORY[2]],
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}})
    events = sse_events(r.text)
    kinds = [k for k, _ in events]
    assert kinds == ["message_start", "ping", "content_block_start", "content_block_delta",
                     "content_block_delta", "content_block_stop", "content_block_start",
                     "content_block_delta", "content_block_delta", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]
    assert events[0][1]["message"]["model"] == "kimi-k2"
    assert events[4][1]["delta"] == {"type": "signature_delta", "signature": "sig"}
    assert events[0][1]["message"]["usage"]["cache_read_input_tokens"] == 50
    sent = fake.requests[-1]
    # a system message inside messages is folded into system; turns still alternate
    assert sent["system"] == [*SYSTEM_BLOCKS, {"type": "text", "text": "reminder"}]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["thinking"] == {"type": "adaptive"} and sent["stream"] is True
    [rec] = gw.wait_usage(1)
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["cache_write_tokens"],
            rec["completion_tokens"]) == (180, 50, 30, 20)
    assert rec["cost_micro"] == KIMI.price.cost(180, 20, 50, 30) and rec["status"] == "ok"


def test_chat_clients_on_an_anthropic_route_are_still_translated(
        native: tuple[Gateway, FakeUpstream]) -> None:
    gw, fake = native
    fake.set(dialect="anthropic", content="Hello there")
    resp = gw.client(gw.key(credit="10")).chat.completions.create(
        model="kimi-k2", messages=[{"role": "system", "content": "s"}, *USER])
    assert resp.choices[0].message.content == "Hello there"
    assert fake.requests[-1]["system"] == "s"  # to_messages, not a native request


def test_fuzzed_bodies_over_http_never_get_a_5xx(gw: Gateway, fake: FakeUpstream) -> None:
    from hypothesis import HealthCheck, given, settings

    from tests.unit.test_messages_protocol import body

    key = gw.key(credit="10")
    http = httpx.Client(base_url=gw.base_url, headers={"x-api-key": key}, timeout=30)
    statuses: dict[int, int] = {}

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=body)
    def run(data: Any) -> None:
        near = {**data, "model": "kimi-k2", "max_tokens": 50, "stream": False}
        nearer = {**near, "messages": [*USER, *(data["messages"] if isinstance(
            data.get("messages"), list) else [])][:1]}
        for path, sent in (("/v1/messages", data), ("/v1/messages/count_tokens", data),
                           ("/v1/messages", near), ("/v1/messages", nearer)):
            r = http.post(path, content=json.dumps(sent, allow_nan=True).encode())
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, r.text
            if r.status_code != 200:
                err = r.json()
                assert err["type"] == "error" and set(err["error"]) == {"type", "message"}
                assert "Traceback" not in r.text

    run()
    http.close()
    assert statuses.get(200, 0) >= 20 and statuses.get(400, 0) >= 20, statuses


def test_console_anthropic_sample_runs_against_the_gateway(gw: Gateway, fake: FakeUpstream) -> None:
    """The console's Anthropic SDK sample (model pages, playground View code) works as shown."""
    import subprocess
    import sys

    from smartoken.console.samples import SampleRequest, all_samples

    fake.set(content="Sample answer here", chunks=3)
    key = gw.key(credit="1")
    for stream in (True, False):
        samples = all_samples(SampleRequest(gw.base_url + "/v1", "kimi-k2", system="Be brief",
                                            max_tokens=64, stream=stream))
        out = subprocess.run([sys.executable, "-c", samples["anthropic"]], capture_output=True,
                             text=True, timeout=60, env={**os.environ, "SMARTOKEN_API_KEY": key})
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "Sample answer here"
        sent = fake.requests[-1]
        assert sent["max_tokens"] == 64 and sent["messages"][0] == {"role": "system",
                                                                   "content": "Be brief"}
    shell = samples["claude_code"]
    assert f'ANTHROPIC_BASE_URL="{gw.base_url}"' in shell
    assert 'ANTHROPIC_AUTH_TOKEN="$SMARTOKEN_API_KEY"' in shell
    assert 'ANTHROPIC_MODEL="kimi-k2"' in shell
    [rec, _] = gw.wait_usage(2)
    assert rec["protocol"] == "messages"


def test_refusals_at_the_edge_are_in_anthropics_shape(fake: FakeUpstream,
                                                       make_inproc: Any) -> None:
    gw = make_inproc(fake_config(fake, max_header_kb=8))
    r = httpx.post(gw.base_url + "/v1/messages", headers={"x-big": "a" * 20_000},
                   json={"model": "kimi-k2", "max_tokens": 5, "messages": USER})
    assert r.status_code == 431
    assert r.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                   "message": r.json()["error"]["message"]}}
    chat = httpx.post(gw.base_url + "/v1/chat/completions", headers={"x-big": "a" * 20_000},
                      json={})
    assert chat.status_code == 431 and chat.json()["error"]["code"]  # OpenAI's shape there


def test_a_secret_split_across_native_stream_events_is_scrubbed(
        native: tuple[Gateway, FakeUpstream]) -> None:
    """Issue 12 item 6: an Anthropic upstream streaming the provider key (upstream-secret-0)
    split across 5-character text deltas. Before, each event was scrubbed alone and both the
    passed-through events and their OpenAI translation delivered it whole."""
    gw, fake = native
    fake.set(dialect="anthropic", content="my key is upstream-secret-0, do not tell",
             split_every=5)
    key = gw.key(credit="10")
    r = httpx.post(gw.base_url + "/v1/messages", headers={"x-api-key": key}, json={
        "model": "kimi-k2", "max_tokens": 200, "stream": True, "messages": USER})
    events = sse_events(r.text)
    text = "".join(d["delta"]["text"] for k, d in events if k == "content_block_delta")
    assert text == "my key is ***, do not tell", text
    kinds = [k for k, _ in events]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    chat = openai.OpenAI(api_key=key, base_url=gw.base_url + "/v1", max_retries=0)
    got = "".join(c.choices[0].delta.content or "" for c in chat.chat.completions.create(
        model="kimi-k2", messages=USER, stream=True, max_tokens=200) if c.choices)
    assert got == "my key is ***, do not tell", got
    records = gw.wait_usage(2)
    assert all(rec["status"] == "ok" for rec in records)
    assert "upstream-secret-0" not in str(records) + gw.log()

"""The Responses ↔ Chat Completions translation as pure functions: requests (including what
Codex 0.171.0 actually sends, captured against a logging server), answers and stream events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartoken.errors import InvalidRequest, UpstreamFailed
from smartoken.protocols import responses as rp
from smartoken.protocols.responses_stream import ResponsesEvents
from smartoken.providers.base import Usage

CODEX = Path(__file__).resolve().parent.parent / "fakes" / "captured" / "codex_0.171.0_resume.json"


def test_codex_resume_request_translates_without_refusal() -> None:
    data = json.loads(CODEX.read_text())
    req = rp.parse(data)
    chat = req.chat
    assert req.stream and not req.store and req.encrypted_reasoning
    roles = [m["role"] for m in chat["messages"]]
    # two developer items -> system; env context + task; the tool turn; the answer; "again"
    assert roles == ["system", "system", "user", "user", "assistant", "tool", "assistant", "user"]
    turn = chat["messages"][4]
    assert turn["reasoning_content"] == "thinking"  # from the summary (not our encryption)
    assert turn["tool_calls"] == [{"id": "call_1", "type": "function", "function": {
        "name": "exec_command", "arguments": '{"cmd":"echo hi"}'}}]
    assert chat["messages"][5]["tool_call_id"] == "call_1"
    assert chat["messages"][6] == {"role": "assistant", "content": "done"}
    names = [t["function"]["name"] for t in chat["tools"]]
    assert "exec_command" in names and "multi_agent_v1__close_agent" in names
    assert all(t["type"] == "function" for t in chat["tools"])  # web_search dropped
    assert req.tool_names["multi_agent_v1__close_agent"] == rp.ToolName(
        "function", "close_agent", "multi_agent_v1")
    assert chat["tool_choice"] == "auto" and chat["parallel_tool_calls"] is True
    assert chat["stream_options"] == {"include_usage": True}
    for dropped in ("include", "prompt_cache_key", "store", "client_metadata", "reasoning"):
        assert dropped not in chat


def test_string_input_instructions_and_options() -> None:
    req = rp.parse({"model": "m", "input": "hi", "instructions": "be brief",
                    "max_output_tokens": 50, "temperature": 0.2,
                    "reasoning": {"effort": "low", "summary": "auto"},
                    "text": {"format": {"type": "json_schema", "name": "x", "strict": True,
                                        "schema": {"type": "object"}}}})
    assert req.chat["messages"] == [{"role": "system", "content": "be brief"},
                                    {"role": "user", "content": "hi"}]
    assert req.chat["max_tokens"] == 50 and req.chat["reasoning_effort"] == "low"
    assert req.chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object"}, "strict": True}}
    assert req.store and not req.stream and "stream" not in req.chat


def test_user_parts_images_and_files() -> None:
    req = rp.parse({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAA", "detail": "low"},
        {"type": "input_file", "file_id": "file-1"}]}]})
    assert req.chat["messages"][0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA", "detail": "low"}},
        {"type": "file", "file": {"file_id": "file-1"}}]


def test_history_and_our_reasoning_round_trip() -> None:
    req = rp.parse({"model": "m", "input": "q", "include": ["reasoning.encrypted_content"]})
    answer = rp.render(req, {"choices": [{"finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "reasoning_content": "why",
        "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "ns__f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4}}, "resp_1")
    kinds = [i["type"] for i in answer["output"]]
    assert kinds == ["reasoning", "function_call"]
    assert answer["output"][0]["encrypted_content"].startswith(rp.ENCRYPTED_PREFIX)
    assert answer["usage"]["total_tokens"] == 7 and answer["status"] == "completed"
    follow = rp.parse({"model": "m", "input": [
        {"type": "function_call_output", "call_id": "c1", "output": "ok"}]},
        history=[*req.items, *answer["output"]])
    turn = follow.chat["messages"][1]
    assert turn["reasoning_content"] == "why"
    assert turn["tool_calls"][0]["function"]["name"] == "ns__f"
    assert follow.chat["messages"][2] == {"role": "tool", "tool_call_id": "c1", "content": "ok"}


def test_namespaced_and_custom_calls_render_back() -> None:
    req = rp.parse({"model": "m", "input": "x", "tools": [
        {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]},
        {"type": "custom", "name": "apply_patch", "description": "patch"},
        {"type": "web_search"}]})
    assert [t["function"]["name"] for t in req.chat["tools"]] == ["ns__f", "apply_patch"]
    fc = rp.call_item(req, "c", "ns__f", "{}")
    assert (fc["name"], fc["namespace"]) == ("f", "ns")
    cc = rp.call_item(req, "c", "apply_patch", '{"input": "*** Begin"}')
    assert cc["type"] == "custom_tool_call" and cc["input"] == "*** Begin"


def test_length_is_incomplete() -> None:
    req = rp.parse({"model": "m", "input": "x"})
    out = rp.render(req, {"choices": [{"finish_reason": "length",
                                       "message": {"content": "ab"}}]}, "resp_2")
    assert out["status"] == "incomplete"
    assert out["incomplete_details"] == {"reason": "max_output_tokens"}
    assert rp.output_text(out["output"]) == "ab"


@pytest.mark.parametrize("body,param", [
    ({"input": "x"}, "model"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": 3}, "input"),
    ({"model": "m", "input": [{"role": "boss", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0]"),
    ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]},
     "input[0].call_id"),
])
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        rp.parse(body)
    assert info.value.param == param


def _events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            kind, data = block.split("\n")
            ev = orjson.loads(data.removeprefix("data: "))
            assert kind == "event: " + ev["type"]
            out.append(ev)
    return out


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_stream_event_sequence() -> None:
    req = rp.parse({"model": "m", "input": "x", "stream": True, "tools": [
        {"type": "function", "name": "f"}]})
    ev = ResponsesEvents(req, "resp_3", 1)
    raw = b""
    for c in (_chunk({"reasoning_content": "hm"}), _chunk({"content": "He"}),
              _chunk({"content": "llo"}),
              _chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {
                  "name": "f", "arguments": "{\"a\""}}]}),
              _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
              _chunk({}, "tool_calls")):
        raw += ev.chunk(c) or b""
    raw += ev.end(Usage(5, 6))
    events = _events(raw)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    done = events[-1]["response"]
    assert [i["type"] for i in done["output"]] == ["reasoning", "message", "function_call"]
    assert done["output"][2]["arguments"] == '{"a":1}' and done["usage"]["total_tokens"] == 11
    assert "_chat_name" not in json.dumps(events)
    assert events[2]["output_index"] == 0 and events[8]["output_index"] == 1


def test_stream_failure_events() -> None:
    req = rp.parse({"model": "m", "input": "x", "stream": True})
    ev = ResponsesEvents(req, "resp_4", 1)
    raw = (ev.chunk(_chunk({"content": "par"})) or b"") + ev.fail(
        UpstreamFailed("cut"), Usage(3, 1))
    events = _events(raw)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-1]["response"]["status"] == "failed"
    assert events[-1]["response"]["error"] == {"code": "upstream_failed", "message": "cut"}
    assert events[-1]["response"]["usage"]["output_tokens"] == 1


def test_stream_without_content_still_opens_and_completes() -> None:
    req = rp.parse({"model": "m", "input": "x", "stream": True})
    ev = ResponsesEvents(req, "resp_5", 1)
    assert ev.chunk({"choices": []}) is not None  # response.created goes out first
    assert ev.chunk({"choices": []}) is None
    events = _events(ev.end(Usage(1, 0)))
    assert [e["type"] for e in events] == ["response.completed"]


JSONS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "role", "content", "text", "name", "call_id", "arguments",
                         "output", "tools", "namespace", "format", "schema", "input",
                         "summary", "encrypted_content", "image_url", "file_id", "effort"]),
        inner, max_size=5),
    max_leaves=20)
KINDS = st.sampled_from(["message", "function_call", "function_call_output", "reasoning",
                         "custom_tool_call", "item_reference", "function", "namespace",
                         "custom", "web_search", "input_text", "input_image", "json_schema"])


@settings(max_examples=200, deadline=None, database=None)
@given(st.fixed_dictionaries({"model": st.text(min_size=1, max_size=3)}, optional={
    "input": st.one_of(st.text(max_size=5), st.lists(st.fixed_dictionaries(
        {"type": KINDS}, optional={"role": st.sampled_from(["user", "assistant", "developer",
                                                             "x"]),
                                   "content": JSONS, "call_id": JSONS, "name": JSONS,
                                   "arguments": JSONS, "output": JSONS, "summary": JSONS,
                                   "encrypted_content": JSONS, "namespace": JSONS}),
        max_size=4), JSONS),
    "tools": st.lists(st.fixed_dictionaries({"type": KINDS}, optional={
        "name": JSONS, "tools": JSONS, "parameters": JSONS}), max_size=3) | JSONS,
    "tool_choice": JSONS, "text": JSONS, "reasoning": JSONS, "instructions": JSONS,
    "max_output_tokens": JSONS, "temperature": JSONS, "stream": JSONS, "store": JSONS,
    "include": JSONS, "previous_response_id": JSONS}))
def test_parser_refuses_only_with_invalid_request(body: dict[str, Any]) -> None:
    try:
        req = rp.parse(body)
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message
        return
    orjson.dumps(req.chat)  # the canonical body is plain JSON
    assert req.chat["messages"]


def test_hand_framed_text_delta_equals_the_generic_event() -> None:
    req = rp.parse({"model": "m", "input": "x", "stream": True})
    a, b = ResponsesEvents(req, "r", 1), ResponsesEvents(req, "r", 1)
    a.chunk(_chunk({"content": "x"}))
    b.chunk(_chunk({"content": "x"}))
    assert a.open is not None and b.open is not None
    a.open["id"] = b.open["id"]
    text = 'q"uo\u2028te\n中'
    generic = b._event("response.output_text.delta", {**b._where(), "content_index": 0,
                                                       "delta": text, "logprobs": []})
    assert a._text_delta(text) == generic

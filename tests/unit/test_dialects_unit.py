"""Dialect translation and error mapping without a server."""

from __future__ import annotations

import orjson
import pytest

from smartoken.providers.base import UpstreamError
from smartoken.providers.dialects import DIALECTS, get_dialect
from smartoken.providers.dialects import anthropic as claude


def err(dialect: str, status: int, body: object) -> tuple[str, bool, int]:
    e = get_dialect(dialect).error(status, orjson.dumps(body), None)
    return e.kind, e.retryable, e.status


def test_every_family_with_quirks_is_registered() -> None:
    assert set(DIALECTS) == {"moonshot", "deepseek", "qwen", "glm", "ernie", "hunyuan",
                             "minimax", "doubao", "anthropic"}
    assert get_dialect("stepfun").name == "openai"


@pytest.mark.parametrize(("dialect", "status", "body", "kind", "retryable"), [
    ("moonshot", 429, {"error": {"type": "exceeded_current_quota_error", "message": "x"}},
     "quota", True),
    ("moonshot", 429, {"error": {"type": "rate_limit_reached_error", "message": "x"}},
     "rate_limited", True),
    ("moonshot", 403, {"error": {"message": "Insufficient balance"}}, "quota", True),
    ("deepseek", 402, {"error": {"message": "Insufficient Balance"}}, "quota", True),
    ("deepseek", 422, {"error": {"message": "bad"}}, "client", False),
    ("deepseek", 503, {"error": {"message": "overloaded"}}, "server", True),
    ("glm", 429, {"error": {"code": "1113", "message": "arrears"}}, "quota", True),
    ("glm", 400, {"error": {"code": "1301", "message": "unsafe"}}, "client", False),
    ("glm", 429, {"error": {"code": "1302", "message": "busy"}}, "rate_limited", True),
    ("glm", 400, {"error": {"code": "1211", "message": "no model"}}, "config", True),
    ("ernie", 200, {"error_code": 18, "error_msg": "qps"}, "rate_limited", True),
    ("ernie", 200, {"error_code": 17, "error_msg": "daily"}, "quota", True),
    ("ernie", 200, {"error_code": 336003, "error_msg": "bad param"}, "client", False),
    ("doubao", 404, {"error": {"code": "InvalidEndpointOrModel.NotFound", "message": "x"}},
     "config", True),
    ("anthropic", 529, {"type": "error", "error": {"type": "overloaded_error",
                                                   "message": "x"}}, "server", True),
    ("anthropic", 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                   "message": "bad"}}, "client", False),
])
def test_error_mapping(dialect: str, status: int, body: object, kind: str,
                       retryable: bool) -> None:
    assert err(dialect, status, body)[:2] == (kind, retryable)


def test_ernie_legacy_error_inside_a_200_answer_raises() -> None:
    with pytest.raises(UpstreamError) as exc:
        get_dialect("ernie").normalize_response({"error_code": 4, "error_msg": "limit"})
    assert exc.value.kind == "rate_limited"


def test_anthropic_request_translation() -> None:
    body = {"model": "claude", "max_tokens": 50, "temperature": 1.8, "stop": "END",
            "tool_choice": "required", "user": "u1", "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f",
                                                                  "arguments": '{"a": 1}'}},
                    {"id": "c2", "type": "function", "function": {"name": "g",
                                                                  "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "one"},
                {"role": "tool", "tool_call_id": "c2", "content": "two"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {
                "type": "object"}}}]}
    out = claude.to_messages(body)
    assert out["system"] == "sys" and out["temperature"] == 1.0
    assert out["stop_sequences"] == ["END"] and out["tool_choice"] == {"type": "any"}
    assert out["metadata"] == {"user_id": "u1"}
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["user", "assistant", "user"]  # the two tool results share one user turn
    assert out["messages"][0]["content"][1]["source"] == {
        "type": "base64", "media_type": "image/png", "data": "AAAA"}
    assert out["messages"][1]["content"][0]["input"] == {"a": 1}
    assert [b["tool_use_id"] for b in out["messages"][2]["content"]] == ["c1", "c2"]
    assert out["tools"][0]["input_schema"] == {"type": "object"}


def test_anthropic_stream_translation() -> None:
    t = claude.StreamTranslator()
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {
            "input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}}},
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta",
                                                              "thinking": "hmm"}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text",
                                                                      "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta",
                                                              "text": "Hi"}},
        {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta",
                                                              "partial_json": '{"a":'}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
         "usage": {"output_tokens": 7}},
        {"type": "message_stop"},
    ]
    chunks = [c for c in (t.feed(e) for e in events) if c is not None]
    assert t.done and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[1]["choices"][0]["delta"] == {"reasoning_content": "hmm"}
    assert chunks[2]["choices"][0]["delta"] == {"content": "Hi"}
    assert chunks[3]["choices"][0]["delta"]["tool_calls"][0]["id"] == "toolu_1"
    assert chunks[4]["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 0, "function": {"arguments": '{"a":'}}
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "tool_calls"
    assert last["usage"] == {"prompt_tokens": 15, "completion_tokens": 7, "total_tokens": 22,
                             "prompt_tokens_details": {"cached_tokens": 5}}


def test_minimax_and_glm_normalisation() -> None:
    mm = get_dialect("minimax").normalize_response({"choices": [{"message": {
        "role": "assistant", "content": "<think>\nplan\n</think>\n\nanswer"}}]})
    assert mm["choices"][0]["message"] == {"role": "assistant", "content": "answer",
                                           "reasoning_content": "plan"}
    glm = get_dialect("glm").normalize_chunk({"choices": [{"delta": {},
                                                           "finish_reason": "sensitive"}]})
    assert glm["choices"][0]["finish_reason"] == "content_filter"


def test_moonshot_and_hunyuan_ranges() -> None:
    body = {"temperature": 0.0, "n": 4}
    get_dialect("moonshot").prepare(body, stream=False)
    assert body == {"temperature": 0.0, "n": 1}
    body = {"temperature": 3}
    get_dialect("hunyuan").prepare(body, stream=True)
    assert body["temperature"] == 2.0 and body["stream_options"] == {"include_usage": True}

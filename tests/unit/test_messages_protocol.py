"""Issue 13: the Anthropic Messages parser and framer as pure functions (Hypothesis): any JSON
body is either translated or refused with InvalidRequest (a 400), never another exception."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from smartoken.errors import InvalidRequest, UpstreamFailed
from smartoken.protocols import messages_convert as convert
from smartoken.protocols.messages_stream import MessagesFramer
from smartoken.providers.base import Usage

scalars = (st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats()
           | st.text(max_size=20))
junk = st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                    | st.dictionaries(st.text(max_size=10), c, max_size=3), max_leaves=10)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, valid, valid, junk)


source = st.fixed_dictionaries({"type": mostly(st.sampled_from(["base64", "url", "text",
                                                                "content"]))},
                               optional={"data": mostly(st.text(max_size=20)),
                                         "media_type": mostly(st.just("image/png")),
                                         "url": mostly(st.text(max_size=20)),
                                         "content": junk})
block = st.fixed_dictionaries(
    {"type": mostly(st.sampled_from(["text", "image", "document", "tool_use", "tool_result",
                                     "thinking", "redacted_thinking", "server_tool_use"]))},
    optional={"text": mostly(st.text(max_size=30)), "source": mostly(source),
              "id": mostly(st.text(max_size=8)), "name": mostly(st.text(max_size=8)),
              "input": junk, "tool_use_id": mostly(st.text(max_size=8)),
              "content": mostly(st.text(max_size=10) | st.lists(junk, max_size=2)),
              "is_error": junk, "thinking": mostly(st.text(max_size=10)),
              "signature": junk, "cache_control": junk})
message = st.fixed_dictionaries(
    {"role": mostly(st.sampled_from(["user", "assistant", "system"])),
     "content": mostly(st.text(max_size=30) | st.lists(block, max_size=4))})
tool = st.fixed_dictionaries({"name": mostly(st.text(min_size=1, max_size=8))},
                             optional={"type": mostly(st.sampled_from(["custom",
                                                                       "web_search_20250305"])),
                                       "input_schema": mostly(st.just({"type": "object"})),
                                       "description": junk})
body = st.fixed_dictionaries(
    {"model": mostly(st.just("kimi-k2")), "messages": mostly(st.lists(message, max_size=4)),
     "max_tokens": mostly(st.integers(1, 40000))},
    optional={"system": mostly(st.text(max_size=20) | st.lists(block, max_size=2)),
              "tools": mostly(st.lists(tool, max_size=3)),
              "tool_choice": mostly(st.fixed_dictionaries({"type": st.sampled_from(
                  ["auto", "any", "tool", "none", "x"])}, optional={"name": junk})),
              "thinking": mostly(st.fixed_dictionaries({"type": st.sampled_from(
                  ["enabled", "disabled", "adaptive", "x"])}, optional={"budget_tokens": junk})),
              "output_config": junk, "stop_sequences": mostly(st.lists(st.text(max_size=4))),
              "stream": mostly(st.booleans()), "temperature": junk, "top_p": junk,
              "metadata": junk, "context_management": junk, "top_k": junk})


@settings(max_examples=400, deadline=None, database=None)
@given(data=body | junk)
def test_the_parser_translates_or_refuses_with_a_400(data: Any) -> None:
    if not isinstance(data, dict):
        return
    try:
        out = convert.to_chat(data)
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message
        assert orjson.loads(orjson.dumps(convert.error_payload(exc)))["type"] == "error"
        return
    assert out["model"] == data["model"] and out["messages"]
    for m in out["messages"]:
        assert m["role"] in ("system", "user", "assistant", "tool")
    orjson.dumps(out)  # the canonical body is plain JSON


@settings(max_examples=200, deadline=None, database=None)
@given(chunks=st.lists(st.fixed_dictionaries({}, optional={"choices": st.lists(
    st.fixed_dictionaries({"delta": st.fixed_dictionaries({}, optional={
        "content": st.text(max_size=5) | st.none(),
        "reasoning_content": st.text(max_size=5) | st.none(),
        "tool_calls": st.lists(st.fixed_dictionaries({"index": st.integers(0, 2)}, optional={
            "id": st.text(max_size=4), "function": st.fixed_dictionaries({}, optional={
                "name": st.text(max_size=4), "arguments": st.text(max_size=5)})}),
            max_size=2)}), "finish_reason": st.sampled_from([None, "stop", "length",
                                                            "tool_calls"])}), max_size=1)}),
    max_size=8), broken=st.booleans())
def test_the_framer_always_emits_a_well_formed_sequence(chunks: list[Any], broken: bool) -> None:
    class Call:
        request_id, requested_model, stream, include_usage, prompt_tokens = "r", "m", True, \
            False, 7
    framer = MessagesFramer(Call())
    out = b"".join(framer.chunk(c) or b"" for c in chunks)
    out += framer.fail(UpstreamFailed("cut"), Usage()) if broken else framer.end(Usage(7, 3))
    events = [orjson.loads(e.split(b"\ndata: ", 1)[1]) for e in out.strip().split(b"\n\n")]
    kinds = [e["type"] for e in events]
    if chunks:
        assert kinds[:2] == ["message_start", "ping"]
    if broken:
        assert kinds[-1] == "error" and "message_stop" not in kinds
        return
    assert kinds[-2:] == ["message_delta", "message_stop"]
    open_: int | None = None
    for e in events:  # blocks open and close in order, one at a time
        if e["type"] == "content_block_start":
            assert open_ is None
            open_ = e["index"]
        elif e["type"] == "content_block_delta":
            assert e["index"] == open_
        elif e["type"] == "content_block_stop":
            assert e["index"] == open_
            open_ = None
    assert open_ is None

"""Demo answers carry fresh ids, as a vendor's do (issue 17): identical prompts got the same
``chatcmpl-…`` and ``tool_calls[].id``, which breaks clients that key results by id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}


def test_identical_prompts_get_distinct_completion_and_tool_call_ids(
        make_inproc: Callable[..., Any]) -> None:
    gw = make_inproc()
    client = gw.client(gw.key(credit="5"))
    msgs = [{"role": "user", "content": "same prompt"}]
    a = client.chat.completions.create(model="kimi-k2", messages=msgs, max_tokens=20)
    b = client.chat.completions.create(model="kimi-k2", messages=msgs, max_tokens=20)
    assert a.id != b.id
    streamed = {c.id for c in client.chat.completions.create(
        model="kimi-k2", messages=msgs, max_tokens=20, stream=True)}
    assert len(streamed) == 1 and streamed.isdisjoint({a.id, b.id})
    calls = [client.chat.completions.create(model="kimi-k2", messages=msgs, tools=[TOOL])
             .choices[0].message.tool_calls for _ in range(2)]
    assert calls[0] and calls[1] and calls[0][0].id != calls[1][0].id

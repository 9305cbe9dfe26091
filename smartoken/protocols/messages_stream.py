"""Canonical stream chunks -> Anthropic's stream events.

The sequence for one answer, as Anthropic sends it::

    message_start, ping,
    [thinking]  content_block_start {thinking}, content_block_delta {thinking_delta}...,
                content_block_stop
    [text]      content_block_start {text}, content_block_delta {text_delta}..., content_block_stop
    [each call] content_block_start {tool_use}, content_block_delta {input_json_delta}...,
                content_block_stop
    message_delta {stop_reason, usage}, message_stop

A failure after the first byte ends the stream with ``event: error`` and Anthropic's error
body. A chunk from an Anthropic-dialect upstream carries the upstream's own events
(``NATIVE``): those are passed through as they came (thinking signatures and cache usage
survive), only the model id is the one the client asked for.
"""

from __future__ import annotations

from typing import Any

import orjson

from smartoken.errors import GatewayError
from smartoken.protocols.base import CallView
from smartoken.protocols.messages_convert import STOP, error_payload, message_id
from smartoken.providers.base import JSON, NATIVE, Usage


def event(kind: str, payload: JSON) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def usage_payload(u: Usage) -> JSON:
    return {"input_tokens": max(0, u.prompt_tokens - u.cached_tokens - u.cache_write_tokens),
            "cache_creation_input_tokens": u.cache_write_tokens,
            "cache_read_input_tokens": u.cached_tokens, "output_tokens": u.completion_tokens}


class MessagesFramer:
    __slots__ = ("call", "calls", "index", "kind", "native", "started", "stop_reason",
                 "stopped")

    def __init__(self, call: CallView) -> None:
        self.call = call
        self.started = False
        self.native = False  # the upstream speaks Anthropic: its events pass through
        self.stopped = False  # message_stop sent
        self.index = -1  # the open content block (-1: none yet)
        self.kind: str | None = None  # its type, None when closed
        self.calls: dict[int, int] = {}  # tool call index -> content block index
        self.stop_reason: str | None = None

    # -------------------------------------------------------------- blocks

    def _open(self, kind: str, block: JSON) -> bytes:
        out = self._close()
        self.index += 1
        self.kind = kind
        return out + event("content_block_start", {"type": "content_block_start",
                                                   "index": self.index, "content_block": block})

    def _close(self) -> bytes:
        if self.kind is None:
            return b""
        self.kind = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def _delta(self, delta: JSON, index: int | None = None) -> bytes:
        return event("content_block_delta", {"type": "content_block_delta",
                                             "index": self.index if index is None else index,
                                             "delta": delta})

    def _start(self) -> bytes:
        self.started = True
        usage = {"input_tokens": self.call.prompt_tokens, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0, "output_tokens": 1}
        return event("message_start", {"type": "message_start", "message": {
            "id": message_id(), "type": "message", "role": "assistant",
            "model": self.call.requested_model, "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": usage}}) + event("ping", {"type": "ping"})

    # -------------------------------------------------------------- chunks

    def _native(self, events: list[JSON]) -> bytes:
        self.native = self.started = True
        out = b""
        for e in events:
            kind = str(e.get("type"))
            if kind == "message_start" and isinstance(e.get("message"), dict):
                e = {**e, "message": {**e["message"], "model": self.call.requested_model}}
            elif kind == "message_stop":
                self.stopped = True
            out += event(kind, e)
        return out

    def chunk(self, chunk: JSON) -> bytes | None:
        native = chunk.get(NATIVE)
        if isinstance(native, list):
            return self._native(native) or None
        out = b"" if self.started else self._start()
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            out += self._choice(delta)
            if choice.get("finish_reason"):
                self.stop_reason = STOP.get(str(choice["finish_reason"]), "end_turn")
        return out or None

    def _choice(self, delta: JSON) -> bytes:
        out = b""
        thinking = delta.get("reasoning_content")
        if isinstance(thinking, str) and thinking:
            if self.kind != "thinking":
                out += self._open("thinking", {"type": "thinking", "thinking": "",
                                               "signature": ""})
            out += self._delta({"type": "thinking_delta", "thinking": thinking})
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self.kind != "text":
                out += self._open("text", {"type": "text", "text": ""})
            out += self._delta({"type": "text_delta", "text": text})
        for call in delta.get("tool_calls") or ():
            out += self._tool_call(call)
        return out

    def _tool_call(self, call: Any) -> bytes:
        if not isinstance(call, dict):
            return b""
        i = call.get("index", 0)
        fn = call.get("function") or {}
        out = b""
        if i not in self.calls:
            out += self._open("tool_use", {"type": "tool_use",
                                           "id": call.get("id") or "toolu_" + message_id()[4:],
                                           "name": fn.get("name") or "", "input": {}})
            self.calls[i] = self.index
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            if self.calls[i] != self.index or self.kind != "tool_use":
                return out  # arguments of a block already closed: Anthropic cannot reopen it
            out += self._delta({"type": "input_json_delta", "partial_json": args})
        return out

    # -------------------------------------------------------------- ends

    def end(self, usage: Usage) -> bytes:
        if self.native:
            if self.stopped:
                return b""
            return event("message_stop", {"type": "message_stop"})
        out = b"" if self.started else self._start()
        if self.index < 0:
            out += self._open("text", {"type": "text", "text": ""})
        out += self._close()
        out += event("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": self.stop_reason or "end_turn", "stop_sequence": None},
            "usage": usage_payload(usage)})
        return out + event("message_stop", {"type": "message_stop"})

    def fail(self, err: GatewayError, usage: Usage) -> bytes:
        return event("error", error_payload(err))

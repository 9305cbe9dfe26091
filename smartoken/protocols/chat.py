"""OpenAI Chat Completions (``POST /v1/chat/completions``): the canonical form itself, so
parsing is validation and rendering is nearly the identity."""

from __future__ import annotations

import time

import orjson

from smartoken.errors import GatewayError, sse_error
from smartoken.protocols import wire
from smartoken.protocols.base import CallView
from smartoken.providers.base import JSON, Usage

DONE_FRAME = b"data: [DONE]\n\n"


def usage_payload(u: Usage) -> JSON:
    out: JSON = {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                 "total_tokens": u.prompt_tokens + u.completion_tokens}
    if u.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": u.cached_tokens}
    if u.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": u.reasoning_tokens}
    return out


class ChatFramer:
    """``data: {chunk}`` per chunk, the usage chunk when asked for, then ``[DONE]``."""

    __slots__ = ("call", "head")

    def __init__(self, call: CallView) -> None:
        self.call = call
        self.head: JSON | None = None

    def chunk(self, chunk: JSON) -> bytes | None:
        if self.head is None:
            self.head = {k: chunk[k] for k in ("id", "created", "system_fingerprint")
                         if k in chunk}
        if not chunk.get("choices"):
            return None
        chunk["model"] = self.call.requested_model
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _usage_frame(self, usage: Usage) -> bytes:
        head = self.head or {}
        payload = {"id": head.get("id", "chatcmpl-" + self.call.request_id),
                   "object": "chat.completion.chunk",
                   "created": head.get("created", int(time.time())),
                   "model": self.call.requested_model, "choices": [],
                   "usage": usage_payload(usage)}
        if "system_fingerprint" in head:
            payload["system_fingerprint"] = head["system_fingerprint"]
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    def end(self, usage: Usage) -> bytes:
        if self.call.include_usage:
            return self._usage_frame(usage) + DONE_FRAME
        return DONE_FRAME

    def fail(self, err: GatewayError, usage: Usage) -> bytes:
        return sse_error(err) + DONE_FRAME


class ChatCompletions:
    name = "chat"
    operation = "complete"

    def parse(self, data: JSON) -> JSON:
        wire.validate_chat(data)
        return data

    def render(self, resp: JSON, call: CallView) -> JSON:
        return resp

    def framer(self, call: CallView) -> ChatFramer:
        return ChatFramer(call)

    def error_body(self, err: GatewayError) -> bytes:
        return err.body()


PROTOCOL = ChatCompletions()

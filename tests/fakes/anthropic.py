"""A fake Anthropic Messages endpoint (``POST /v1/messages``) for ``FakeUpstream``: checks the
headers and request shape and answers as Claude does, streamed or not."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
from aiohttp import web

JSON = dict[str, Any]


def _error(status: int, etype: str, message: str) -> web.Response:
    return web.Response(status=status, content_type="application/json", body=orjson.dumps(
        {"type": "error", "error": {"type": etype, "message": message}}))


def check(request: web.Request, body: JSON) -> web.Response | None:
    if not request.headers.get("x-api-key") or "authorization" in request.headers:
        return _error(401, "authentication_error", "invalid x-api-key")
    if not request.headers.get("anthropic-version"):
        return _error(400, "invalid_request_error", "anthropic-version header is required")
    if not isinstance(body.get("max_tokens"), int):
        return _error(400, "invalid_request_error", "max_tokens: Field required")
    roles = [m.get("role") for m in body.get("messages", [])]
    if any(r not in ("user", "assistant") for r in roles) or any(
            a == b for a, b in itertools.pairwise(roles)):
        return _error(400, "invalid_request_error", "roles must alternate user/assistant")
    return None


def _blocks(s: JSON, text: str) -> list[JSON]:
    blocks: list[JSON] = []
    if s.get("reasoning"):
        blocks.append({"type": "thinking", "thinking": s["reasoning"], "signature": "sig"})
    if s.get("tool_call"):
        tc = s["tool_call"]
        blocks.append({"type": "tool_use", "id": "toolu_fake1", "name": tc["name"],
                       "input": orjson.loads(tc["arguments"])})
    else:
        blocks.append({"type": "text", "text": text})
    return blocks


def _usage(s: JSON) -> JSON:
    u = s.get("usage") or {"input_tokens": 25, "output_tokens": 12}
    return dict(u)


async def answer(request: web.Request, body: JSON, s: JSON, text: str) -> web.StreamResponse:
    stop = "tool_use" if s.get("tool_call") else "end_turn"
    if not body.get("stream"):
        return web.Response(content_type="application/json", body=orjson.dumps({
            "id": "msg_fake1", "type": "message", "role": "assistant", "model": body["model"],
            "content": _blocks(s, text), "stop_reason": stop, "stop_sequence": None,
            "usage": _usage(s)}))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    usage = _usage(s)

    async def send(event: str, data: JSON) -> None:
        await resp.write(f"event: {event}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n")
        if s.get("chunk_delay"):
            await asyncio.sleep(float(s["chunk_delay"]))

    start_usage = {k: v for k, v in usage.items() if k != "output_tokens"}
    await send("message_start", {"type": "message_start", "message": {
        "id": "msg_fake1", "type": "message", "role": "assistant", "model": body["model"],
        "content": [], "stop_reason": None, "usage": {**start_usage, "output_tokens": 1}}})
    await send("ping", {"type": "ping"})
    for i, block in enumerate(_blocks(s, text)):
        kind = block["type"]
        if kind == "thinking":
            await send("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {"type": "thinking",
                                                                 "thinking": ""}})
            await send("content_block_delta", {"type": "content_block_delta", "index": i,
                                               "delta": {"type": "thinking_delta",
                                                         "thinking": block["thinking"]}})
            await send("content_block_delta", {"type": "content_block_delta", "index": i,
                                               "delta": {"type": "signature_delta",
                                                         "signature": block["signature"]}})
        elif kind == "tool_use":
            await send("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {**block, "input": {}}})
            await send("content_block_delta", {"type": "content_block_delta", "index": i,
                                               "delta": {"type": "input_json_delta",
                                                         "partial_json": s["tool_call"][
                                                             "arguments"]}})
        else:
            await send("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {"type": "text", "text": ""}})
            n = int(s.get("split_every") or 0)  # pieces of n characters, else words
            pieces = [block["text"][j:j + n] for j in range(0, len(block["text"]), n)] if n \
                else [word + " " for word in block["text"].split(" ")]
            for piece in pieces:
                await send("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "text_delta",
                                                             "text": piece}})
        await send("content_block_stop", {"type": "content_block_stop", "index": i})
    await send("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": stop, "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]}})
    await send("message_stop", {"type": "message_stop"})
    await resp.write_eof()
    return resp

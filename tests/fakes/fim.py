"""The fake upstream's fill-in-the-middle endpoint (DeepSeek's ``/beta/completions``, Qwen's
``/v1/completions``): ``prompt`` + ``suffix`` in, ``text_completion`` objects or chunks out."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web


async def answer(request: web.Request, body: dict[str, Any], text: str,
                 usage: dict[str, Any]) -> web.StreamResponse:
    head = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
            "model": body.get("model")}
    if not body.get("stream"):
        return web.json_response({**head, "choices": [
            {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
            "usage": usage})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    words = text.split(" ")
    for i, word in enumerate(words):
        piece = word + (" " if i < len(words) - 1 else "")
        await resp.write(b"data: " + orjson.dumps({**head, "choices": [
            {"index": 0, "text": piece, "logprobs": None, "finish_reason": None}]}) + b"\n\n")
    await resp.write(b"data: " + orjson.dumps({**head, "choices": [
        {"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}]}) + b"\n\n")
    if (body.get("stream_options") or {}).get("include_usage"):
        await resp.write(b"data: " + orjson.dumps({**head, "choices": [], "usage": usage})
                         + b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp

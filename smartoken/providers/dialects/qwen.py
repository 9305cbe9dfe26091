"""Qwen (DashScope compatible mode): usage only with ``stream_options.include_usage``, in a
final chunk whose ``choices`` is empty (the base dialect injects the option); non-streaming
calls must send ``enable_thinking: false``; error bodies add a top-level ``request_id``.
OpenAI's ``reasoning_effort`` becomes ``enable_thinking`` ("none" false, any level true) on
streaming calls, unless the client sent ``enable_thinking`` itself."""

from __future__ import annotations

import orjson

from smartoken.providers.base import JSON, UpstreamError
from smartoken.providers.dialects.base import Dialect, effort


class QwenDialect(Dialect):
    name = "qwen"

    def prepare(self, body: JSON, stream: bool) -> None:
        super().prepare(body, stream)
        level = effort(body)
        if level is not None:
            body.pop("reasoning_effort")
            body.setdefault("enable_thinking", level != "none")
        if not stream:
            body["enable_thinking"] = False

    def error(self, status: int, raw: bytes, retry_after: float | None) -> UpstreamError:
        err = super().error(status, raw, retry_after)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return err
        rid = data.get("request_id") if isinstance(data, dict) else None
        if rid:
            err.message += f" (upstream request_id {rid})"
            if err.body is not None:
                err.body["message"] = f"{err.body['message']} (upstream request_id {rid})"
        return err

"""GLM (Zhipu): ``finish_reason`` may be ``sensitive`` (reported as OpenAI's
``content_filter``) or ``network_error`` (the generation failed upstream: an upstream error);
errors carry string codes (Z.ai's error-code reference): 1000-1004 authentication; 1110-1113,
1121 and 1304 the route's account is inactive, locked, in arrears or out of its daily calls
(out of balance: long cooldown); 1211 and 1220-1222 the route's model id or API is not
available to it (misconfigured route); 1210-1215 and 1261 invalid parameters and 1301 unsafe
content (the client's request: passed back as a 400); 1302/1303/1305 concurrency and rate
limits; 1234 a network error upstream.

Thinking (docs.bigmodel.cn, guide/capabilities/thinking-mode): ``thinking: {"type":
"enabled"|"disabled"}``, on by default from GLM-4.7; OpenAI's ``reasoning_effort`` becomes that
switch ("none" off, any level on). Interleaved thinking needs each tool-call turn's
``reasoning_content`` returned with the tool results: passed through untouched."""

from __future__ import annotations

from smartoken.providers.base import JSON, UpstreamError
from smartoken.providers.dialects.base import Dialect, thinking_switch

AUTH = frozenset({"1000", "1001", "1002", "1003", "1004"})
QUOTA = frozenset({"1110", "1111", "1112", "1113", "1121", "1304"})
CONFIG = frozenset({"1211", "1220", "1221", "1222"})
RATE = frozenset({"1302", "1303", "1305"})
CLIENT = frozenset({"1210", "1212", "1213", "1214", "1215", "1261", "1301"})


class GLMDialect(Dialect):
    name = "glm"

    def prepare(self, body: JSON, stream: bool) -> None:
        super().prepare(body, stream)
        thinking_switch(body)

    def error(self, status: int, raw: bytes, retry_after: float | None) -> UpstreamError:
        message, code, _ = self._error_fields(raw)
        text = f"upstream returned {status} (code {code}): {message}"
        if code in QUOTA:
            return UpstreamError(text, kind="quota", status=status)
        if code in AUTH:
            return UpstreamError(text, kind="auth", status=401)
        if code in CONFIG:
            return UpstreamError(text, kind="config", status=status)
        if code in RATE:
            return UpstreamError(text, kind="rate_limited", status=429, retry_after=retry_after)
        if code in CLIENT:
            etype = "content_filter" if code == "1301" else "invalid_request_error"
            return UpstreamError(text, kind="client", status=400, retryable=False,
                                 body={"message": message, "type": etype, "code": code})
        return super().error(status, raw, retry_after)

    def _finish(self, obj: JSON) -> JSON:
        for choice in obj.get("choices") or ():
            reason = choice.get("finish_reason")
            if reason == "sensitive":
                choice["finish_reason"] = "content_filter"
            elif reason == "network_error":
                raise UpstreamError("upstream generation failed (finish_reason network_error)",
                                    kind="server", status=502)
        return obj

    def normalize_chunk(self, chunk: JSON) -> JSON:
        return self._finish(super().normalize_chunk(chunk))

    def normalize_response(self, resp: JSON) -> JSON:
        return self._finish(resp)

"""GLM (Zhipu): ``finish_reason`` may be ``sensitive`` (reported as OpenAI's
``content_filter``) or ``network_error`` (the generation failed upstream: an upstream error);
errors carry string codes: 1113 account in arrears (route out of balance), 1301 unsafe content
(the client's request), 1302/1303 rate or concurrency limit, 1210-1214 invalid parameters."""

from __future__ import annotations

from smartoken.providers.base import JSON, UpstreamError
from smartoken.providers.dialects.base import Dialect

QUOTA = frozenset({"1113"})
RATE = frozenset({"1302", "1303", "1305"})
CLIENT = frozenset({"1210", "1211", "1212", "1213", "1214", "1261", "1301"})


class GLMDialect(Dialect):
    name = "glm"

    def error(self, status: int, raw: bytes, retry_after: float | None) -> UpstreamError:
        message, code, _ = self._error_fields(raw)
        text = f"upstream returned {status} (code {code}): {message}"
        if code in QUOTA:
            return UpstreamError(text, kind="quota", status=status)
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

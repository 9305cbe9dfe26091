"""ERNIE (Baidu Qianfan v2): OpenAI-shaped, but legacy v1 errors ``{"error_code", "error_msg"}``
still appear, sometimes with HTTP 200 and sometimes as a stream event."""

from __future__ import annotations

import orjson

from smartoken.providers.base import JSON, UpstreamError
from smartoken.providers.dialects.base import Dialect

RATE = frozenset({4, 18, 336501, 336502, 336100})  # qps / rpm / tpm limits, try again later
QUOTA = frozenset({17, 19, 336104})  # daily or total request limit reached, arrears
AUTH = frozenset({6, 13, 14, 15, 110, 111, 336004})
CLIENT = frozenset({100, 336001, 336002, 336003, 336006, 336007, 336103, 336106})


class ErnieDialect(Dialect):
    name = "ernie"

    def error(self, status: int, raw: bytes, retry_after: float | None) -> UpstreamError:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and "error_code" in data:
            return self.legacy_error(data, retry_after)
        return super().error(status, raw, retry_after)

    @staticmethod
    def legacy_error(data: JSON, retry_after: float | None = None) -> UpstreamError:
        code, msg = data.get("error_code"), str(data.get("error_msg") or "")
        text = f"upstream error_code {code}: {msg}"
        if code in RATE:
            return UpstreamError(text, kind="rate_limited", status=429, retry_after=retry_after)
        if code in QUOTA:
            return UpstreamError(text, kind="quota", status=429)
        if code in AUTH:
            return UpstreamError(text, kind="auth", status=401)
        if code in CLIENT:
            return UpstreamError(text, kind="client", status=400, retryable=False,
                                 body={"message": msg, "type": "invalid_request_error",
                                       "code": str(code)})
        return UpstreamError(text, kind="server", status=502)

    def normalize_response(self, resp: JSON) -> JSON:
        if "error_code" in resp and "choices" not in resp:
            raise self.legacy_error(resp)
        return resp

    def normalize_chunk(self, chunk: JSON) -> JSON:
        if "error_code" in chunk and "choices" not in chunk:
            raise self.legacy_error(chunk)
        return super().normalize_chunk(chunk)

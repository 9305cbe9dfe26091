"""The gateway's error tree, and the one place that renders it as an OpenAI error body.

    GatewayError
     ├── InvalidRequest (400)      ── ContextLengthExceeded
     ├── AuthenticationFailed (401)
     ├── InsufficientBalance (402)
     ├── PermissionDenied (403)
     ├── NotFound (404)
     ├── Conflict (409)
     ├── PayloadTooLarge (413)
     ├── HeadersTooLarge (431)
     ├── BudgetExceeded (429, not retried by SDKs)
     ├── RateLimited (429, Retry-After)
     ├── UpstreamFailed (502/503/504)
     └── BudgetStoreUnavailable (503: the shared budget store, Redis, is unreachable)

After the first SSE byte a handler cannot change the status: errors go in-band as an ``error``
event (``sse_error``).
"""

from __future__ import annotations

import orjson


class GatewayError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        # A plain string (encoders such as msgspec refuse str subclasses); ``text`` keeps the
        # message as given, with its gettext template when it has one (i18n/message.py), for
        # the console to show it in the reader's language.
        self.message = str(message)
        self.text = message
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}

    def payload(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body(self) -> bytes:
        return orjson.dumps(self.payload())


class InvalidRequest(GatewayError):
    status, type, code = 400, "invalid_request_error", "invalid_request"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class AuthenticationFailed(GatewayError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class InsufficientBalance(GatewayError):
    """The account's wallet cannot cover the request's worst case. 402, never retried."""

    status, type, code = 402, "insufficient_quota", "insufficient_balance"

    def __init__(self, message: str, **kw: object) -> None:
        super().__init__(message, headers={"x-should-retry": "false"}, **kw)  # type: ignore[arg-type]


class PermissionDenied(GatewayError):
    status, type, code = 403, "permission_error", "model_not_allowed"


class NotFound(GatewayError):
    status, type, code = 404, "invalid_request_error", "model_not_found"


class Conflict(GatewayError):
    """The resource already exists (an account name taken). 409."""

    status, type, code = 409, "invalid_request_error", "already_exists"


class PayloadTooLarge(GatewayError):
    status, type, code = 413, "invalid_request_error", "request_too_large"


class HeadersTooLarge(GatewayError):
    status, type, code = 431, "invalid_request_error", "request_headers_too_large"


class BudgetExceeded(GatewayError):
    """A key's daily or monthly budget is spent. 429, marked not to be retried by the SDKs."""

    status, type, code = 429, "insufficient_quota", "budget_exceeded"

    def __init__(self, message: str, **kw: object) -> None:
        super().__init__(message, headers={"x-should-retry": "false"}, **kw)  # type: ignore[arg-type]


class RateLimited(GatewayError):
    status, type, code = 429, "rate_limit_error", "rate_limit_exceeded"

    def __init__(self, message: str, retry_after: float, **kw: object) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(message, headers={"retry-after": str(seconds)}, **kw)  # type: ignore[arg-type]


class UpstreamFailed(GatewayError):
    """Every route failed. ``status`` is 502 (bad answer), 503 (unavailable) or 504 (timeout)."""

    type, code = "upstream_error", "upstream_failed"

    def __init__(self, message: str, status: int = 502, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.status = status


class BudgetStoreUnavailable(GatewayError):
    """Budgets cannot be checked (Redis is down) and the policy is to fail closed."""

    status, type, code = 503, "server_error", "budget_store_unavailable"

    def __init__(self, message: str, **kw: object) -> None:
        super().__init__(message, headers={"retry-after": "1"}, **kw)  # type: ignore[arg-type]


class DatabaseUnavailable(GatewayError):
    """The database did not answer in time (pool exhausted, connection lost): a 503 the
    client may retry, not an internal error."""

    status, type, code = 503, "server_error", "database_unavailable"

    def __init__(self, message: str, **kw: object) -> None:
        super().__init__(message, headers={"retry-after": "1"}, **kw)  # type: ignore[arg-type]


class BudgetStoreBusy(BudgetStoreUnavailable):
    """Redis answers, but this process waited too long for a free pooled connection."""

    code = "budget_store_busy"


class LargeBodiesBusy(GatewayError):
    """Too many large request bodies are being processed; this one waited too long."""

    status, type, code = 503, "server_error", "large_requests_busy"

    def __init__(self, message: str, **kw: object) -> None:
        super().__init__(message, headers={"retry-after": "5"}, **kw)  # type: ignore[arg-type]


def sse_error(err: GatewayError) -> bytes:
    """An in-band error event for a stream that has already started."""
    return b"data: " + err.body() + b"\n\n"

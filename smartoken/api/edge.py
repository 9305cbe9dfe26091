"""Edge hardening, one pure ASGI layer in front of the routes: header size limit (431) and a
per-IP limit on failed authentications (429 with ``Retry-After``), plus CORS when configured.

Failed authentications are counted from the responses: every 401 the gateway answers counts
against the client's address in a fixed one-minute window. An address over the limit is
refused before authentication until its window ends (health probes and ``/metrics`` excepted).
Behind a reverse proxy, let uvicorn take the client address from ``X-Forwarded-For``
(``FORWARDED_ALLOW_IPS``), or every client shares the proxy's address. The table is bounded
(``MAX_CLIENTS`` addresses): expired windows are dropped first, then the oldest entries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.middleware.cors import CORSMiddleware

from smartoken.config import Settings
from smartoken.errors import GatewayError, HeadersTooLarge, InvalidRequest, RateLimited
from smartoken.logs import log_refused
from smartoken.protocols.messages import PROTOCOL as MESSAGES

PROBES = frozenset({"/healthz", "/readyz", "/metrics"})  # never blocked: monitoring
WINDOW = 60.0
MAX_CLIENTS = 10_000


class AuthFailures:
    """Failed authentications per client address in fixed windows. Pure, bounded."""

    def __init__(self, limit: int, window: float = WINDOW, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.max_clients, self.clock = limit, window, max_clients, clock
        self._seen: dict[str, tuple[float, int]] = {}

    def blocked_for(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when it is not blocked."""
        entry = self._seen.get(client)
        if entry is None:
            return 0.0
        left = entry[0] + self.window - self.clock()
        if left <= 0:
            del self._seen[client]
            return 0.0
        return left if entry[1] >= self.limit else 0.0

    def failed(self, client: str) -> None:
        now = self.clock()
        entry = self._seen.get(client)
        if entry is None or now - entry[0] >= self.window:
            if entry is None and len(self._seen) >= self.max_clients:
                self._evict(now)
            self._seen[client] = (now, 1)
        else:
            self._seen[client] = (entry[0], entry[1] + 1)

    def _evict(self, now: float) -> None:
        for k in [k for k, (start, _) in self._seen.items() if now - start >= self.window]:
            del self._seen[k]
        while len(self._seen) >= self.max_clients:  # still full: drop the oldest entries
            del self._seen[next(iter(self._seen))]

    def __len__(self) -> int:
        return len(self._seen)


class EdgeGuard:
    def __init__(self, app: Any, max_header_bytes: int, auth_failures_per_minute: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.failures = AuthFailures(auth_failures_per_minute)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = sum(len(k) + len(v) + 4 for k, v in scope["headers"]) + len(scope.get(
            "raw_path") or b"") + len(scope.get("query_string") or b"")
        if size > self.max_header_bytes:
            await self._refuse(scope, send, HeadersTooLarge(
                f"The request line and headers are {size} bytes, over the limit of "
                f"{self.max_header_bytes} bytes."))
            return
        if "\x00" in scope.get("path", "") or b"%00" in (scope.get("query_string") or b""):
            # No id, name or filter holds a NUL, and PostgreSQL text cannot store one.
            await self._refuse(scope, send, InvalidRequest(
                "The path or query string contains a NUL character.", code="invalid_request"))
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        state = getattr(getattr(self.app, "state", None), "smartoken", None)
        shared = getattr(state, "auth_failures", None)  # in Redis, when configured
        wait = 0.0 if scope.get("path") in PROBES else (
            await shared.blocked_for(client) if shared is not None
            else self.failures.blocked_for(client))
        if wait > 0:
            await self._refuse(scope, send, RateLimited(
                "Too many failed authentications from this address; try again later.",
                retry_after=wait, code="too_many_auth_failures"))
            return

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                if shared is not None:
                    await shared.failed(client)
                else:
                    self.failures.failed(client)
            await send(message)

        await self.app(scope, receive, watch)


    async def _refuse(self, scope: Any, send: Any, err: GatewayError) -> None:
        """Answer here, before any route; counted and logged like every refusal."""
        state = getattr(getattr(self.app, "state", None), "smartoken", None)
        if state is not None:
            state.metrics.refused(err.status)
        client = scope.get("client")
        log_refused(scope.get("state", {}).get("request_id"), scope.get("method", ""),
                    scope.get("path", ""), client[0] if client else None, err.status, err.code)
        await _send_error(send, err, str(scope.get("path", "")))


async def _send_error(send: Any, err: GatewayError, path: str = "") -> None:
    """The error body in the shape of the protocol the path speaks (Anthropic's on
    /v1/messages, before any route has named it)."""
    headers = [(b"content-type", b"application/json"),
               *((k.encode(), v.encode()) for k, v in err.headers.items())]
    body = MESSAGES.error_body(err) if path.startswith("/v1/messages") else err.body()
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def edge(app: Any, settings: Settings) -> Any:
    """The edge layers around the routes: CORS (only when ``cors_origins`` is set) outside the
    guard, so that browsers get CORS headers on refusals too."""
    guarded = EdgeGuard(app, settings.max_header_bytes, settings.auth_failures_per_minute)
    if not settings.cors_origins:
        return guarded
    return CORSMiddleware(guarded, allow_origins=list(settings.cors_origins),
                          allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
                          allow_headers=["*"],
                          expose_headers=["x-request-id", "retry-after"], max_age=600)

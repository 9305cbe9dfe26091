"""GET /metrics (Prometheus text format), and counting requests refused before routing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from smartoken.api.http import app_state
from smartoken.errors import GatewayError
from smartoken.ledger import refusals
from smartoken.logs import log_refused, redact
from smartoken.metrics import CONTENT_TYPE
from smartoken.providers.base import UpstreamError


async def metrics(request: Request) -> Response:
    state = app_state(request)
    return Response(state.metrics.render(state), media_type=CONTENT_TYPE)


def note_refused(request: Request, err: GatewayError) -> None:
    """Before an error is rendered: redact secrets from its message (a client that sends its
    key as a model id does not get it echoed), then count and log it if it left no usage
    record: a 4xx raised before routing. (Errors after routing, and 5xx, are counted from
    their usage record.)"""
    err.message = redact(err.message)
    if err.status >= 500 or isinstance(err.__context__, UpstreamError):
        return
    smartoken = getattr(request.app.state, "smartoken", None)
    if smartoken is not None:
        smartoken.metrics.refused(err.status)
    client = request.scope.get("client")
    scope_state = request.scope.get("state", {})
    log_refused(scope_state.get("request_id"), request.method,
                request.url.path, client[0] if client else None, err.status, err.code)
    key = scope_state.get("key")
    if smartoken is not None and scope_state.get("request_id") and \
            request.url.path.startswith(("/v1/", "/console/api/playground")):
        refusals.note(smartoken.engine, {
            "id": scope_state["request_id"], "path": request.url.path,
            "account_id": getattr(key, "account_id", None), "key_id": getattr(key, "key_id", None),
            "model": scope_state.get("model"), "http_status": err.status, "code": err.code,
            "message": err.message})

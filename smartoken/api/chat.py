"""POST /v1/chat/completions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from smartoken.api import wire
from smartoken.api.http import JSONResponse, app_state, authenticate, read_body
from smartoken.relay import pipeline
from smartoken.relay.stream import RelayStream


async def chat_completions(request: Request) -> Response | RelayStream:
    state = app_state(request)
    key = await authenticate(request)
    data = wire.parse_json(await read_body(request, state.settings.max_body_bytes))
    call = await pipeline.prepare(state, request.state.request_id, key, data)
    if not call.stream:
        try:
            return JSONResponse(await pipeline.complete(state, call))
        finally:
            if call.reservation is not None and not call.reservation.done:
                state.reserver.release(call.reservation)
    route, provider, it, first = await pipeline.open_stream(state, call)
    return RelayStream(state, call, route, provider, it, first)

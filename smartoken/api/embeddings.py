"""POST /v1/embeddings, routed like chat."""

from __future__ import annotations

from starlette.requests import Request

from smartoken.api import wire
from smartoken.api.http import JSONResponse, app_state, authenticate, read_body
from smartoken.relay import pipeline


async def embeddings(request: Request) -> JSONResponse:
    state = app_state(request)
    key = await authenticate(request)
    data = wire.parse_json(await read_body(request, state.settings.max_body_bytes))
    call = await pipeline.prepare_embeddings(state, request.state.request_id, key, data)
    return JSONResponse(await pipeline.complete(state, call, "embed"))

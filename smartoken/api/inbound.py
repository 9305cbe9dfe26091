"""Serving one client protocol on the relay: read, parse by the protocol, prepare, then answer
unary (rendered by the protocol) or streamed (framed by the protocol). Errors raised here are
shaped by the protocol noted on the request (``app._gateway_error``)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from smartoken.api.bodies import Admission, release_admission
from smartoken.api.http import JSONResponse, app_state, authenticate
from smartoken.auth.keys import KeyContext
from smartoken.protocols.base import InboundProtocol
from smartoken.providers.base import JSON
from smartoken.relay import pipeline
from smartoken.relay.stream import RelayStream
from smartoken.state import AppState


def fit_max_output(state: AppState, data: JSON) -> None:
    spec = state.catalog.get(data.get("model", ""))
    wanted = pipeline.requested_output(data)
    if spec is not None and spec.max_output and wanted is not None and wanted > spec.max_output:
        data.pop("max_completion_tokens", None)
        data["max_tokens"] = spec.max_output


async def _watch_disconnect(request: Request, call: pipeline.Call) -> None:
    """Note a client that hangs up while its unary answer is being made: the upstream still
    answers and bills, so the call goes on and is recorded ``client_closed``/499."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            call.abandoned = True
            return


async def serve(request: Request, protocol: InboundProtocol, *, api_key_header: bool = False,
                native: bool = False, fit_output: bool = False) -> Response | RelayStream:
    """``api_key_header``: accept ``x-api-key`` as well as Bearer. ``native``: keep the client's
    request for a provider that speaks this protocol itself. ``fit_output``: lower an output
    limit above the model's maximum to that maximum instead of sending it on (clients that
    always send one large value, such as Claude Code's 32000)."""
    state = app_state(request)
    request.state.protocol = protocol
    key = await authenticate(request, api_key_header=api_key_header)
    # a large body is read, parsed and sized under an admission (admission.py); answer()
    # gives it back once the request is prepared
    async with Admission(state.bodies, request, state.settings.max_body_bytes) as body:
        raw = await body.json()
        data = protocol.parse(raw)
        return await answer(request, state, key, protocol, data,
                            native=raw if native else None, fit_output=fit_output)


async def answer(request: Request, state: AppState, key: KeyContext, protocol: InboundProtocol,
                 data: JSON, *, native: JSON | None = None,
                 fit_output: bool = False) -> Response | RelayStream:
    """Prepare a parsed canonical body and answer it as ``protocol`` (also for endpoints that
    parse themselves, as ``/v1/responses`` does after reading ``previous_response_id``)."""
    request.state.protocol = protocol
    rid = request.state.request_id
    try:
        if protocol.operation == "embed":
            call = await pipeline.prepare_embeddings(state, rid, key, data, protocol.name)
        else:
            if fit_output:
                fit_max_output(state, data)
            call = await pipeline.prepare(state, rid, key, data, protocol.name, native=native)
    finally:
        release_admission(request)
    if not call.stream:
        watcher = asyncio.ensure_future(_watch_disconnect(request, call))
        try:
            resp = await pipeline.complete(state, call, protocol.operation)
            return JSONResponse(protocol.render(resp, call))
        finally:
            watcher.cancel()
            if call.reservation is not None and not call.reservation.done:
                state.reserver.release(call.reservation)
    route, provider, it, first = await pipeline.open_stream(state, call)
    return RelayStream(state, call, route, provider, it, first, protocol.framer(call))

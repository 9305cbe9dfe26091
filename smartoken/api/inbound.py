"""Serving one client protocol on the relay: read, parse by the protocol, prepare, then answer
unary (rendered by the protocol) or streamed (framed by the protocol). Errors raised here are
shaped by the protocol noted on the request (``app._gateway_error``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from smartoken.api.http import JSONResponse, app_state, authenticate, read_body
from smartoken.protocols import wire
from smartoken.protocols.base import InboundProtocol
from smartoken.relay import pipeline
from smartoken.relay.stream import RelayStream


async def serve(request: Request, protocol: InboundProtocol, *,
                api_key_header: bool = False) -> Response | RelayStream:
    state = app_state(request)
    request.state.protocol = protocol
    key = await authenticate(request, api_key_header=api_key_header)
    data = protocol.parse(wire.parse_json(await read_body(request,
                                                          state.settings.max_body_bytes)))
    rid = request.state.request_id
    if protocol.operation == "embed":
        call = await pipeline.prepare_embeddings(state, rid, key, data, protocol.name)
    else:
        call = await pipeline.prepare(state, rid, key, data, protocol.name)
    if not call.stream:
        try:
            resp = await pipeline.complete(state, call, protocol.operation)
            return JSONResponse(protocol.render(resp, call))
        finally:
            if call.reservation is not None and not call.reservation.done:
                state.reserver.release(call.reservation)
    route, provider, it, first = await pipeline.open_stream(state, call)
    return RelayStream(state, call, route, provider, it, first, protocol.framer(call))

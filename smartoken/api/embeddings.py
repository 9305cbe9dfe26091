"""POST /v1/embeddings, routed like chat."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from smartoken.api.inbound import serve
from smartoken.protocols.embeddings import PROTOCOL
from smartoken.relay.stream import RelayStream


async def embeddings(request: Request) -> Response | RelayStream:
    return await serve(request, PROTOCOL)

"""POST /v1/chat/completions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from smartoken.api.inbound import serve
from smartoken.protocols.chat import PROTOCOL
from smartoken.relay.stream import RelayStream


async def chat_completions(request: Request) -> Response | RelayStream:
    return await serve(request, PROTOCOL)

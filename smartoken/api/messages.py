"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API on the relay.

Auth by ``x-api-key`` or ``Authorization: Bearer``; ``anthropic-version`` and ``anthropic-beta``
are accepted and not needed (``?beta=true``, which Claude Code adds, too). Errors are
Anthropic's shape (``protocols/messages.py``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from smartoken.api.bodies import Admission
from smartoken.api.http import JSONResponse, app_state, authenticate
from smartoken.api.inbound import serve
from smartoken.protocols import messages_convert
from smartoken.protocols.messages import PROTOCOL
from smartoken.relay import context, pipeline
from smartoken.relay.stream import RelayStream


async def messages(request: Request) -> Response | RelayStream:
    return await serve(request, PROTOCOL, api_key_header=True, native=True, fit_output=True)


async def count_tokens(request: Request) -> Response:
    """The prompt's size as the gateway counts it (the upstream's own tokenizer may differ);
    free: nothing is reserved, routed or recorded."""
    state = app_state(request)
    request.state.protocol = PROTOCOL
    key = await authenticate(request, api_key_header=True)
    # a large body is read, parsed and sized under an admission (admission.py), as for chat
    async with Admission(state.bodies, request, state.settings.max_body_bytes) as body:
        data = messages_convert.to_chat(await body.json(), counting=True)
        pipeline.resolve_model(state, key, data["model"])
        size = context.size_prompt(data["messages"], data.get("tools"))
    return JSONResponse({"input_tokens": size.tokens})

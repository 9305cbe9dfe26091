"""Small HTTP helpers shared by the endpoints: JSON responses, bounded body reads, the key."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from smartoken.auth.keys import KeyContext
from smartoken.errors import PayloadTooLarge
from smartoken.state import AppState


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.smartoken
    return state


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body of {declared} bytes is larger than the limit of "
                              f"{limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def authenticate(request: Request, *, api_key_header: bool = False) -> KeyContext:
    """The key of ``Authorization: Bearer``; with ``api_key_header`` (Anthropic's clients)
    ``x-api-key`` is accepted too when no Authorization header is sent."""
    authorization = request.headers.get("authorization")
    if authorization is None and api_key_header:
        api_key = request.headers.get("x-api-key")
        if api_key:
            authorization = "Bearer " + api_key
    key = await app_state(request).keys.authenticate(authorization)
    request.scope.setdefault("state", {})["key"] = key  # whose refusal it is (console)
    return key

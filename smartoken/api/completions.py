"""``POST /v1/completions`` (legacy): see ``protocols/completions.py``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from smartoken.api.bodies import Admission
from smartoken.api.http import app_state, authenticate
from smartoken.api.inbound import answer
from smartoken.errors import InvalidRequest
from smartoken.protocols import completions as cp
from smartoken.protocols import wire
from smartoken.relay.stream import RelayStream
from smartoken.state import AppState


def _fim_capable(state: AppState, model: str) -> bool:
    """Every route of the model goes to a provider with a FIM endpoint (``providers/fim.py``)."""
    spec = state.catalog.get(model)
    routes = state.router.routes(spec.id) if spec is not None else []
    return bool(routes) and all(
        getattr(state.providers.get(r.provider), "supports_fim", False) for r in routes)


async def completions(request: Request) -> Response | RelayStream:
    state = app_state(request)
    key = await authenticate(request)
    # a large body is read, parsed and sized under an admission (admission.py), as for chat
    async with Admission(state.bodies, request, state.settings.max_body_bytes) as body:
        data = await body.json()
        chat = cp.parse(data)
        suffix = cp.suffix_of(data)
        if suffix is not None:
            if not _fim_capable(state, chat["model"]):
                raise InvalidRequest(
                    f"'suffix' (fill in the middle) is not supported for '{chat['model']}': "
                    "its upstreams have no fill-in-the-middle endpoint (DeepSeek's and Qwen's "
                    "have one). Send the prompt alone.", param="suffix",
                    code="unsupported_parameter")
            chat["suffix"] = suffix
        echo = chat["messages"][0]["content"] if data.get("echo") is True else ""
        del data
        wire.validate_chat(chat)
        return await answer(request, state, key, cp.Completions(echo), chat)

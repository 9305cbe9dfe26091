"""``POST /v1/responses``, ``GET``/``DELETE /v1/responses/{id}`` and
``GET /v1/responses/{id}/input_items``.

A request with ``previous_response_id`` continues a stored conversation of the same account;
answers are stored unless ``store`` is false or the retention setting is 0. A streamed answer
is stored when its ``response.completed`` goes out; the save runs beside the stream, and a
follow-up that names it waits for that save.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from smartoken.api.bodies import Admission
from smartoken.api.http import JSONResponse, app_state, authenticate
from smartoken.api.inbound import answer
from smartoken.auth.keys import KeyContext
from smartoken.errors import NotFound
from smartoken.protocols import responses as rp
from smartoken.protocols import wire
from smartoken.protocols.responses_call import ResponsesCall
from smartoken.providers.base import JSON
from smartoken.relay.stream import RelayStream
from smartoken.state import AppState
from smartoken.store import responses as stored

log = logging.getLogger("smartoken")
_pending: dict[str, asyncio.Task[None]] = {}  # saves under way, by response id


def _not_found(response_id: str, param: str | None = None) -> NotFound:
    return NotFound(f"No response with id '{response_id}' is stored for this account (it was "
                    "made with store: false, deleted or has expired).", param=param,
                    code="response_not_found")


async def _load(state: AppState, key: KeyContext, response_id: str) -> stored.Stored | None:
    task = _pending.get(response_id)
    if task is not None:
        await asyncio.wait([task])
    return await stored.get(state.engine, key.account_id, response_id)


def _saver(state: AppState, key: KeyContext, history: list[JSON]) -> Callable[[JSON], None]:
    retention = timedelta(days=state.settings.responses_retention_days)

    def save(body: JSON) -> None:
        rid = body["id"]
        task = asyncio.get_running_loop().create_task(
            stored.save(state.engine, key.account_id, key.key_id, body, history, retention))
        _pending[rid] = task

        def done(t: asyncio.Task[None]) -> None:
            _pending.pop(rid, None)
            if not t.cancelled() and t.exception() is not None:
                log.error("storing response %s failed: %s", rid, t.exception())

        task.add_done_callback(done)

    return save


async def create_response(request: Request) -> Response | RelayStream:
    state = app_state(request)
    key = await authenticate(request)
    # a large body is read, parsed and sized under an admission (admission.py), as for chat
    async with Admission(state.bodies, request, state.settings.max_body_bytes) as body:
        data = await body.json()
        prev = data.get("previous_response_id")
        history: list[JSON] = []
        if isinstance(prev, str) and prev:
            found = await _load(state, key, prev)
            if found is None:
                raise _not_found(prev, "previous_response_id")
            history = found.conversation
        req = rp.parse(data, history)
        del data
        response_id = "resp_" + request.state.request_id.removeprefix("req_")
        keep = req.store and state.settings.responses_retention_days > 0
        proto = ResponsesCall(req, response_id,
                              _saver(state, key, [*history, *req.items]) if keep else None)
        wire.validate_chat(req.chat)
        return await answer(request, state, key, proto, req.chat)


async def _found(request: Request) -> stored.Stored:
    """The caller's stored response named in the path, or a 404."""
    response_id = request.path_params["response_id"]
    found = await _load(app_state(request), await authenticate(request), response_id)
    if found is None:
        raise _not_found(response_id)
    return found


async def get_response(request: Request) -> Response:
    return JSONResponse((await _found(request)).body)


async def list_input_items(request: Request) -> Response:
    found = await _found(request)
    items = found.history
    return JSONResponse({"object": "list", "data": items,
                         "first_id": items[0].get("id") if items else None,
                         "last_id": items[-1].get("id") if items else None,
                         "has_more": False})


async def delete_response(request: Request) -> Response:
    state = app_state(request)
    key = await authenticate(request)
    response_id = request.path_params["response_id"]
    task = _pending.get(response_id)
    if task is not None:
        await asyncio.wait([task])
    if not await stored.remove(state.engine, key.account_id, response_id):
        raise _not_found(response_id)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})

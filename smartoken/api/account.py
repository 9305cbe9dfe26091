"""The account API under ``/account``: any key reads and manages its own account only: its
keys, wallet, transactions and usage. Another account's key id answers 404."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartoken.api import admin_common as common
from smartoken.api import admin_views
from smartoken.api.admin_auth import require_account, require_key_manager
from smartoken.api.http import JSONResponse, app_state


async def me(request: Request) -> JSONResponse:
    key = await require_account(request)
    state = app_state(request)
    row = await common.account_or_404(state, key.account_id)
    view = await admin_views.account_view(state, row)
    view["key_id"] = key.key_id
    return JSONResponse(view)


async def list_keys(request: Request) -> JSONResponse:
    key = await require_account(request)
    return await common.list_keys(app_state(request), key.account_id)


async def create_key(request: Request) -> JSONResponse:
    key = await require_key_manager(request)
    data = await common.read_json(request, common.KEY_FIELDS)
    return await common.create_key(app_state(request), key.account_id, data)


async def get_key(request: Request) -> JSONResponse:
    key = await require_account(request)
    state = app_state(request)
    row = await common.key_or_404(state, int(request.path_params["key_id"]), key.account_id)
    return JSONResponse(await admin_views.key_view(state, row))


async def update_key(request: Request) -> JSONResponse:
    key = await require_key_manager(request)
    data = await common.read_json(request, common.KEY_FIELDS)
    return await common.update_key(app_state(request), int(request.path_params["key_id"]),
                                   key.account_id, data)


async def revoke_key(request: Request) -> JSONResponse:
    key = await require_key_manager(request)
    return await common.revoke_key(app_state(request), int(request.path_params["key_id"]),
                                   key.account_id)


async def wallet(request: Request) -> JSONResponse:
    key = await require_account(request)
    return await common.wallet(app_state(request), key.account_id)


async def transactions(request: Request) -> JSONResponse:
    key = await require_account(request)
    return await common.transactions(app_state(request), request, key.account_id)


async def usage(request: Request) -> JSONResponse:
    key = await require_account(request)
    return await common.usage(app_state(request), request, key.account_id)


async def usage_csv(request: Request) -> Response:
    key = await require_account(request)
    return await common.usage_csv(app_state(request), request, key.account_id)


def account_routes() -> list[Route]:
    key = "/account/keys/{key_id:int}"
    return [
        Route("/account", me, methods=["GET"]),
        Route("/account/keys", list_keys, methods=["GET"]),
        Route("/account/keys", create_key, methods=["POST"]),
        Route(key, get_key, methods=["GET"]),
        Route(key, update_key, methods=["PATCH"]),
        Route(key, revoke_key, methods=["DELETE"]),
        Route(key + "/revoke", revoke_key, methods=["POST"]),
        Route("/account/wallet", wallet, methods=["GET"]),
        Route("/account/wallet/transactions", transactions, methods=["GET"]),
        Route("/account/usage", usage, methods=["GET"]),
        Route("/account/usage.csv", usage_csv, methods=["GET"]),
    ]

"""The admin HTTP API under ``/admin``: accounts, wallets, keys, budgets and limits, usage.

Every endpoint needs an admin credential (``admin_auth.require_admin``). Bodies are JSON
objects; unknown fields and bad values are refused with an OpenAI-shaped 400 before anything
changes. Money is an exact USD string.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartoken.api import admin_common as common
from smartoken.api import admin_input as inp
from smartoken.api import admin_ops, admin_views
from smartoken.api.admin_auth import require_admin
from smartoken.api.http import JSONResponse, app_state
from smartoken.auth.passwords import hash_password
from smartoken.errors import Conflict, InvalidRequest
from smartoken.store import money_repo, repo


def _id(request: Request, name: str) -> int:
    what = "account" if name == "account_id" else "API key"
    return inp.row_id(int(request.path_params[name]), what, name)


async def create_account(request: Request) -> JSONResponse:
    admin = await require_admin(request)
    state = app_state(request)
    data = await common.read_json(request, {"name", "role", "password", "credit"}, {"name"})
    name, role = inp.account_name(data), inp.role(data)
    password = inp.text(data, "password", 200)
    if password and len(password) < 8:
        raise InvalidRequest("'password' must have at least 8 characters.", param="password",
                             code="invalid_value")
    credit = inp.opt_usd(data, "credit")
    pw_hash = await asyncio.to_thread(hash_password, password) if password else None
    try:
        account_id = await repo.create_account(state.engine, name, role, pw_hash)
    except repo.Conflict:
        raise Conflict(f"An account named '{name}' already exists.", param="name") from None
    if credit:
        await admin_ops.post_transaction(state, account_id, "credit", credit, actor=admin.actor,
                                         reason="opening credit")
    row = await common.account_or_404(state, account_id)
    return JSONResponse(await admin_views.account_view(state, row), status_code=201)


async def list_accounts(request: Request) -> JSONResponse:
    await require_admin(request)
    state = app_state(request)
    rows = await repo.list_accounts(state.engine)
    return JSONResponse({"object": "list", "has_more": False,
                         "data": [await admin_views.account_view(state, r) for r in rows]})


async def get_account(request: Request) -> JSONResponse:
    await require_admin(request)
    state = app_state(request)
    row = await common.account_or_404(state, _id(request, "account_id"))
    return JSONResponse(await admin_views.account_view(state, row))


async def update_account(request: Request) -> JSONResponse:
    await require_admin(request)
    state = app_state(request)
    account_id = _id(request, "account_id")
    await common.account_or_404(state, account_id)
    data = await common.read_json(request, {"role", "disabled"})
    if not data:
        raise InvalidRequest("Send 'role' and/or 'disabled'.", code="missing_field")
    if "disabled" in data and not isinstance(data["disabled"], bool):
        raise InvalidRequest("'disabled' must be true or false.", param="disabled",
                             code="invalid_type")
    if "role" in data:
        await money_repo.set_role(state.engine, account_id, inp.role(data))
    if "disabled" in data:
        await money_repo.set_disabled(state.engine, account_id, data["disabled"])
    state.keys.clear()
    row = await common.account_or_404(state, account_id)
    return JSONResponse(await admin_views.account_view(state, row))


async def get_wallet(request: Request) -> JSONResponse:
    await require_admin(request)
    return await common.wallet(app_state(request), _id(request, "account_id"))


async def list_transactions(request: Request) -> JSONResponse:
    await require_admin(request)
    return await common.transactions(app_state(request), request, _id(request, "account_id"))


async def post_transaction(request: Request) -> JSONResponse:
    admin = await require_admin(request)
    state = app_state(request)
    account_id = _id(request, "account_id")
    await common.account_or_404(state, account_id)
    data = await common.read_json(request, {"kind", "amount", "reason"}, {"amount", "reason"})
    kind = data.get("kind", "credit")
    if kind not in admin_ops.KINDS:
        raise InvalidRequest(f"'kind' must be one of {', '.join(sorted(admin_ops.KINDS))}.",
                             param="kind", code="invalid_value")
    amount = inp.usd(data["amount"], "amount", allow_negative=kind == "adjustment")
    if amount == 0:
        raise InvalidRequest("'amount' must not be zero.", param="amount",
                             code="invalid_amount")
    reason = inp.text(data, "reason", 500)
    if not reason.strip():
        raise InvalidRequest("'reason' must say why (it is kept in the ledger).",
                             param="reason", code="invalid_value")
    txn_id, _ = await admin_ops.post_transaction(state, account_id, str(kind), amount,
                                                 actor=admin.actor, reason=reason)
    row = await money_repo.get_transaction(state.engine, txn_id)
    assert row is not None
    view = admin_views.transaction_view(row)
    account = await common.account_or_404(state, account_id)
    view["wallet"] = await admin_views.wallet_view(state, account_id,
                                                   int(account["balance_micro"]))
    return JSONResponse(view, status_code=201)


async def create_key(request: Request) -> JSONResponse:
    await require_admin(request)
    state = app_state(request)
    data = await common.read_json(request, common.KEY_FIELDS | {"account_id", "admin"},
                                  {"account_id"})
    account_id = data["account_id"]
    if isinstance(account_id, bool) or not isinstance(account_id, int):
        raise InvalidRequest("'account_id' must be an integer.", param="account_id",
                             code="invalid_type")
    account = await common.account_or_404(state, account_id)
    return await common.create_key(state, account_id, data, account)


async def list_keys(request: Request) -> JSONResponse:
    await require_admin(request)
    q = request.query_params
    for name in q:
        if name != "account_id":
            raise InvalidRequest(f"Unknown query parameter '{name}'.", param=name,
                                 code="unknown_parameter")
    return await common.list_keys(app_state(request), inp.query_id(q, "account_id"))


async def get_key(request: Request) -> JSONResponse:
    await require_admin(request)
    state = app_state(request)
    row = await common.key_or_404(state, _id(request, "key_id"), None)
    return JSONResponse(await admin_views.key_view(state, row))


async def update_key(request: Request) -> JSONResponse:
    await require_admin(request)
    data = await common.read_json(request, common.KEY_FIELDS)
    return await common.update_key(app_state(request), _id(request, "key_id"), None, data)


async def revoke_key(request: Request) -> JSONResponse:
    await require_admin(request)
    return await common.revoke_key(app_state(request), _id(request, "key_id"), None)


async def usage(request: Request) -> JSONResponse:
    await require_admin(request)
    return await common.usage(app_state(request), request, None)


async def usage_csv(request: Request) -> Response:
    await require_admin(request)
    return await common.usage_csv(app_state(request), request, None)


def admin_routes() -> list[Route]:
    acct = "/admin/accounts/{account_id:int}"
    key = "/admin/keys/{key_id:int}"
    return [
        Route("/admin/accounts", create_account, methods=["POST"]),
        Route("/admin/accounts", list_accounts, methods=["GET"]),
        Route(acct, get_account, methods=["GET"]),
        Route(acct, update_account, methods=["PATCH"]),
        Route(acct + "/wallet", get_wallet, methods=["GET"]),
        Route(acct + "/wallet/transactions", list_transactions, methods=["GET"]),
        Route(acct + "/wallet/transactions", post_transaction, methods=["POST"]),
        Route("/admin/keys", create_key, methods=["POST"]),
        Route("/admin/keys", list_keys, methods=["GET"]),
        Route(key, get_key, methods=["GET"]),
        Route(key, update_key, methods=["PATCH"]),
        Route(key, revoke_key, methods=["DELETE"]),
        Route(key + "/revoke", revoke_key, methods=["POST"]),
        Route("/admin/usage", usage, methods=["GET"]),
        Route("/admin/usage.csv", usage_csv, methods=["GET"]),
    ]

"""Handlers shared by the admin API and the account API; ``account_id`` scopes them (None:
every account, for admins)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from smartoken.api import admin_input as inp
from smartoken.api import admin_ops, admin_views
from smartoken.api.http import JSONResponse, read_body
from smartoken.errors import InvalidRequest, NotFound
from smartoken.money import format_usd
from smartoken.protocols.wire import JSON
from smartoken.state import AppState
from smartoken.store import money_repo, repo

KEY_FIELDS = frozenset({"name", "families", "daily_budget", "monthly_budget", "rpm", "tpm",
                        "expires_at", "expires_in"})


async def read_json(request: Request, allowed: Collection[str],
                    required: Collection[str] = ()) -> JSON:
    return inp.body(await read_body(request, inp.BODY_LIMIT), allowed, required)


async def account_or_404(state: AppState, account_id: int) -> dict[str, Any]:
    inp.row_id(account_id, "account", "account_id")
    row = await repo.get_account(state.engine, account_id=account_id)
    if row is None:
        raise NotFound(f"No account with id {account_id}.", param="account_id",
                       code="account_not_found")
    return row


async def key_or_404(state: AppState, key_id: int, account_id: int | None) -> dict[str, Any]:
    inp.row_id(key_id, "API key", "key_id")
    row = await repo.get_key(state.engine, key_id)
    if row is None or (account_id is not None and row["account_id"] != account_id):
        raise NotFound(f"No API key with id {key_id}.", param="key_id", code="key_not_found")
    return row


def key_fields(state: AppState, data: JSON) -> repo.KeyFields:
    _, expires = inp.expiry(data)
    return repo.KeyFields(
        name=inp.text(data, "name", 100), families=inp.families(data, state.catalog.families),
        daily_budget_micro=inp.opt_usd(data, "daily_budget"),
        monthly_budget_micro=inp.opt_usd(data, "monthly_budget"),
        rpm=inp.opt_limit(data, "rpm"), tpm=inp.opt_limit(data, "tpm"), expires_at=expires)


def key_changes(state: AppState, data: JSON) -> dict[str, Any]:
    """Only the fields present in ``data``; null clears a limit."""
    out: dict[str, Any] = {}
    if "name" in data:
        out["name"] = inp.text(data, "name", 100)
    if "families" in data:
        out["families"] = inp.families(data, state.catalog.families)
    for name, column in (("daily_budget", "daily_budget_micro"),
                         ("monthly_budget", "monthly_budget_micro")):
        if name in data:
            out[column] = inp.opt_usd(data, name)
    for name in ("rpm", "tpm"):
        if name in data:
            out[name] = inp.opt_limit(data, name)
    given, expires = inp.expiry(data)
    if given:
        out["expires_at"] = expires
    return out


def admin_flag(data: JSON, fields: repo.KeyFields, account: dict[str, Any]) -> bool:
    """``admin: true`` makes an admin key: only for an admin account, never a restricted key."""
    value = data.get("admin", False)
    if not isinstance(value, bool):
        raise InvalidRequest("'admin' must be true or false.", param="admin",
                             code="invalid_type")
    if not value:
        return False
    if account.get("role") != "admin":
        raise InvalidRequest("An admin key can only be created for an account with the admin "
                             "role.", param="admin", code="invalid_value")
    if fields.families or fields.daily_budget_micro is not None or \
            fields.monthly_budget_micro is not None or fields.rpm or fields.tpm or \
            fields.expires_at is not None:
        raise InvalidRequest("An admin key cannot be restricted (families, budgets, rpm, tpm, "
                             "expiry): a restricted key is never an admin.", param="admin",
                             code="invalid_value")
    return True


async def create_key(state: AppState, account_id: int, data: JSON,
                     account: dict[str, Any] | None = None) -> JSONResponse:
    """``account`` given (the admin API) lets the body ask for an admin key."""
    fields = key_fields(state, data)
    if account is not None:
        fields.admin = admin_flag(data, fields, account)
    secret, key_id = await admin_ops.create_key(state, account_id, fields)
    row = await key_or_404(state, key_id, None)
    view = await admin_views.key_view(state, row)
    view["key"] = secret  # shown this once; only its hash is stored
    return JSONResponse(view, status_code=201)


async def update_key(state: AppState, key_id: int, account_id: int | None,
                     data: JSON) -> JSONResponse:
    await key_or_404(state, key_id, account_id)
    changes = key_changes(state, data)
    if changes:
        await admin_ops.update_key(state, key_id, changes)
    return JSONResponse(await admin_views.key_view(state, await key_or_404(state, key_id, None)))


async def revoke_key(state: AppState, key_id: int, account_id: int | None) -> JSONResponse:
    await key_or_404(state, key_id, account_id)
    await admin_ops.revoke_key(state, key_id, datetime.now(UTC))
    return JSONResponse(await admin_views.key_view(state, await key_or_404(state, key_id, None)))


async def list_keys(state: AppState, account_id: int | None) -> JSONResponse:
    rows = await repo.list_keys(state.engine, account_id)
    data = [await admin_views.key_view(state, r) for r in rows]
    return JSONResponse({"object": "list", "data": data, "has_more": False})


async def wallet(state: AppState, account_id: int) -> JSONResponse:
    row = await account_or_404(state, account_id)
    view = await admin_views.wallet_view(state, account_id, int(row["balance_micro"]))
    total, _ = await money_repo.ledger_sum(state.engine, account_id)
    view["ledger_sum"] = format_usd(total)
    return JSONResponse(view)


async def transactions(state: AppState, request: Request, account_id: int) -> JSONResponse:
    await account_or_404(state, account_id)
    q = request.query_params
    for name in q:
        if name not in ("limit", "offset"):
            raise InvalidRequest(f"Unknown query parameter '{name}'.", param=name,
                                     code="unknown_parameter")
    limit = inp.query_int(q, "limit", 100, 1, inp.MAX_PAGE)
    offset = inp.query_int(q, "offset", 0, 0, 10**9)
    rows = await money_repo.transactions_page(state.engine, account_id, limit + 1, offset)
    return JSONResponse(admin_views.page([admin_views.transaction_view(r) for r in rows],
                                         limit, offset))


async def usage(state: AppState, request: Request, account_id: int | None) -> JSONResponse:
    f = inp.usage_filter(request.query_params, export=False, account_id=account_id)
    limit = f.limit
    f.limit = limit + 1
    rows = await repo.query_usage(state.engine, f)
    out = admin_views.page([admin_views.usage_view(r) for r in rows], limit, f.offset)
    f.limit, f.offset = 0, 0
    totals = await repo.usage_totals(state.engine, f)
    cost = totals.pop("cost_micro")
    out["totals"] = {**totals, "cost": format_usd(cost)}
    return JSONResponse(out)


async def usage_csv(state: AppState, request: Request, account_id: int | None) -> Response:
    f = inp.usage_filter(request.query_params, export=True, account_id=account_id)
    rows = await repo.query_usage(state.engine, f)
    return Response(admin_views.usage_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="usage.csv"'})

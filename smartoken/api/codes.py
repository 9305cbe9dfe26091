"""Redemption codes and monthly statements over HTTP (issue 15).

Admin: ``POST /admin/redemption-codes`` makes a batch (the codes in full in this one answer),
``GET`` lists them (never the code), ``POST …/{id}/revoke`` or ``DELETE …/{id}`` revokes one,
``POST /admin/redemption-codes/revoke`` every unredeemed code of a batch; any account's
statement under ``/admin/accounts/{id}/statements/``. Account: ``POST /account/redeem`` with any
key of the account (it can only add money), and its own statements.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartoken.api import admin_common as common
from smartoken.api import admin_input as inp
from smartoken.api.admin_auth import require_account, require_admin
from smartoken.api.admin_views import iso
from smartoken.api.http import JSONResponse, app_state
from smartoken.billing import codes, statements
from smartoken.errors import InvalidRequest, NotFound
from smartoken.money import format_usd
from smartoken.state import AppState
from smartoken.store import codes as store

BATCH_FIELDS = frozenset({"count", "amount", "batch", "expires_at", "expires_in"})


def code_status(row: dict[str, Any], at: datetime | None = None) -> str:
    if row["redeemed_at"] is not None:
        return "redeemed"
    if row["revoked_at"] is not None:
        return "revoked"
    exp = row["expires_at"]
    if exp is not None:
        exp = exp if exp.tzinfo else exp.replace(tzinfo=UTC)
        if exp <= (at or datetime.now(UTC)):
            return "expired"
    return "active"


def code_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"object": "redemption_code", "id": row["id"], "batch": row["batch"],
            "hint": "…" + str(row["hint"]), "amount": format_usd(int(row["amount_micro"])),
            "status": code_status(row), "expires_at": iso(row["expires_at"]),
            "created_at": iso(row["created_at"]), "created_by": row["created_by"],
            "revoked_at": iso(row["revoked_at"]), "redeemed_at": iso(row["redeemed_at"]),
            "redeemed_by": row["redeemed_by"], "transaction_id": row["transaction_id"]}


def batch_label(data: dict[str, Any]) -> str:
    label = inp.text(data, "batch", 100).strip()
    if any(ord(c) < 32 for c in label):
        raise InvalidRequest("'batch' must not contain control characters.", param="batch",
                             code="invalid_value")
    return label


async def create_codes(request: Request) -> JSONResponse:
    admin = await require_admin(request)
    state = app_state(request)
    data = await common.read_json(request, BATCH_FIELDS, {"count", "amount"})
    count = data["count"]
    if isinstance(count, bool) or not isinstance(count, int):
        raise InvalidRequest("'count' must be an integer.", param="count", code="invalid_type")
    amount = inp.usd(data["amount"], "amount")
    _, expires = inp.expiry(data)
    made = await codes.create_batch(state.engine, count, amount, batch=batch_label(data),
                                    expires_at=expires, actor=admin.actor)
    rows = await store.get_codes(state.engine, made.ids)
    out = [{**code_view(r), "code": c} for r, c in zip(rows, made.codes, strict=True)]
    return JSONResponse({"object": "list", "data": out, "has_more": False}, status_code=201)


async def list_codes(request: Request) -> JSONResponse:
    await require_admin(request)
    q = request.query_params
    for name in q:
        if name not in ("batch", "limit", "offset"):
            raise InvalidRequest(f"Unknown query parameter '{name}'.", param=name,
                                 code="unknown_parameter")
    limit = inp.query_int(q, "limit", 100, 1, inp.MAX_PAGE)
    offset = inp.query_int(q, "offset", 0, 0, 10**9)
    rows = await store.list_codes(app_state(request).engine, batch=q.get("batch"),
                                  limit=limit + 1, offset=offset)
    return JSONResponse({"object": "list", "data": [code_view(r) for r in rows[:limit]],
                         "has_more": len(rows) > limit, "limit": limit, "offset": offset})


async def _code_or_404(state: AppState, request: Request) -> dict[str, Any]:
    code_id = int(request.path_params["code_id"])
    row = await store.get_code(state.engine, code_id) if 1 <= code_id <= inp.MAX_ID else None
    if row is None:
        raise NotFound(f"No redemption code with id {code_id}.", param="code_id",
                       code="code_not_found")
    return row


async def get_code(request: Request) -> JSONResponse:
    await require_admin(request)
    return JSONResponse(code_view(await _code_or_404(app_state(request), request)))


async def revoke_code(request: Request) -> JSONResponse:
    await require_admin(request)
    state = app_state(request)
    row = await _code_or_404(state, request)
    await store.revoke(state.engine, code_id=int(row["id"]))
    return JSONResponse(code_view(await _code_or_404(state, request)))


async def revoke_batch(request: Request) -> JSONResponse:
    await require_admin(request)
    data = await common.read_json(request, {"batch"}, {"batch"})
    label = batch_label(data)
    n = await store.revoke(app_state(request).engine, batch=label)
    return JSONResponse({"object": "revocation", "batch": label, "revoked": n})


async def redeem(request: Request) -> JSONResponse:
    key = await require_account(request)
    state = app_state(request)
    data = await common.read_json(request, {"code"}, {"code"})
    text = data["code"]
    if not isinstance(text, str):
        raise InvalidRequest("'code' must be a string.", param="code", code="invalid_type")
    done = await codes.redeem(state, key.account_id, text,
                              actor=f"{key.account_name} (key {key.prefix}…)")
    return JSONResponse({"object": "redemption", "code_id": done.code_id,
                         "amount": format_usd(done.amount_micro),
                         "transaction_id": done.transaction_id,
                         "balance": format_usd(done.balance_micro)})


async def statement_for(state: AppState, account_id: int, month: str,
                        csv_: bool) -> Response:
    account = await common.account_or_404(state, account_id)
    st = await statements.build(state.engine, account, month, state.settings.tz)
    if csv_:
        name = f"statement-{st.account_id}-{st.month}.csv"
        return Response(statements.as_csv(st, state.settings.tz),
                        media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{name}"'})
    return JSONResponse(statements.as_json(st))


async def my_statement(request: Request) -> Response:
    key = await require_account(request)
    return await statement_for(app_state(request), key.account_id,
                               request.path_params["month"], False)


async def my_statement_csv(request: Request) -> Response:
    key = await require_account(request)
    return await statement_for(app_state(request), key.account_id,
                               request.path_params["month"], True)


async def account_statement(request: Request) -> Response:
    await require_admin(request)
    account_id = inp.row_id(int(request.path_params["account_id"]), "account", "account_id")
    return await statement_for(app_state(request), account_id,
                               request.path_params["month"], False)


async def account_statement_csv(request: Request) -> Response:
    await require_admin(request)
    account_id = inp.row_id(int(request.path_params["account_id"]), "account", "account_id")
    return await statement_for(app_state(request), account_id,
                               request.path_params["month"], True)


def routes() -> list[Route]:
    code = "/admin/redemption-codes/{code_id:int}"
    acct = "/admin/accounts/{account_id:int}/statements/{month}"
    return [
        Route("/admin/redemption-codes", create_codes, methods=["POST"]),
        Route("/admin/redemption-codes", list_codes, methods=["GET"]),
        Route("/admin/redemption-codes/revoke", revoke_batch, methods=["POST"]),
        Route(code, get_code, methods=["GET"]),
        Route(code, revoke_code, methods=["DELETE"]),
        Route(code + "/revoke", revoke_code, methods=["POST"]),
        Route(acct + ".csv", account_statement_csv, methods=["GET"]),
        Route(acct, account_statement, methods=["GET"]),
        Route("/account/redeem", redeem, methods=["POST"]),
        Route("/account/statements/{month}.csv", my_statement_csv, methods=["GET"]),
        Route("/account/statements/{month}", my_statement, methods=["GET"]),
    ]

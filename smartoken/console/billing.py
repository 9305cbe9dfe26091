"""Console pages for redemption codes and monthly statements (issue 15).

A user redeems a code on the wallet page and reads a printable statement per month (and its
CSV); an admin generates batches of codes (shown once), revokes them, and reads any account's
statement. Everything goes through the same functions as the HTTP API (billing/codes.py,
billing/statements.py), so the checks and the one constant refusal are the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import RedirectResponse, Response

from smartoken.api.codes import code_status
from smartoken.billing import codes, statements
from smartoken.console import pages
from smartoken.console.http import Ctx
from smartoken.errors import GatewayError, InvalidRequest, NotFound
from smartoken.money import MoneyError, format_usd, parse_usd
from smartoken.store import codes as store
from smartoken.store import repo

LISTED = 200  # codes on the admin page


async def redeem(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    text = str(form.get("code", ""))
    try:
        done = await codes.redeem(ctx.state, ctx.user.id, text,
                                  actor=f"{ctx.user.name} (console)")
    except GatewayError as exc:
        return await pages.wallet(ctx, status=exc.status, redeem_error=exc)
    return RedirectResponse(f"/console/wallet?redeemed={format_usd(done.amount_micro)}", 303)


# ---------------------------------------------------------------- statements


async def _account(ctx: Ctx, account_id: int) -> dict[str, Any]:
    row = await repo.get_account(ctx.state.engine, account_id=account_id) \
        if 1 <= account_id <= 2**31 - 1 else None
    if row is None:
        raise NotFound("No such account.", code="account_not_found")
    return row


async def statements_page(ctx: Ctx) -> Response:
    account = await _account(ctx, ctx.user.id)
    months = statements.months_of(account["created_at"], datetime.now(UTC),
                                  ctx.state.settings.tz)
    return ctx.render("statements.html", months=months, account=account,
                      base="/console/wallet/statements")


async def _statement(ctx: Ctx, account_id: int, csv_: bool, base: str) -> Response:
    account = await _account(ctx, account_id)
    month = str(ctx.request.path_params["month"])
    st = await statements.build(ctx.state.engine, account, month, ctx.state.settings.tz)
    if csv_:
        return Response(statements.as_csv(st, ctx.state.settings.tz),
                        media_type="text/csv; charset=utf-8", headers={
                            "content-disposition":
                                f'attachment; filename="statement-{account_id}-{month}.csv"'})
    year, mon = statements.parse_month(month)
    prev = f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"
    nxt = f"{year + 1}-01" if mon == 12 else f"{year}-{mon + 1:02d}"
    last_day = (st.end.astimezone(ctx.state.settings.tz) - timedelta(seconds=1)).date()
    return ctx.render("statement.html", st=st, base=base, prev=prev, next=nxt,
                      first_day=st.start.astimezone(ctx.state.settings.tz).date(),
                      last_day=last_day, generated=datetime.now(UTC))


async def statement_page(ctx: Ctx) -> Response:
    return await _statement(ctx, ctx.user.id, False, "/console/wallet/statements")


async def statement_csv(ctx: Ctx) -> Response:
    return await _statement(ctx, ctx.user.id, True, "/console/wallet/statements")


def _account_id(ctx: Ctx) -> int:
    return int(ctx.request.path_params["account_id"])


async def admin_statement_page(ctx: Ctx) -> Response:
    aid = _account_id(ctx)
    return await _statement(ctx, aid, False, f"/console/admin/accounts/{aid}/statements")


async def admin_statement_csv(ctx: Ctx) -> Response:
    aid = _account_id(ctx)
    return await _statement(ctx, aid, True, f"/console/admin/accounts/{aid}/statements")


async def admin_statements_page(ctx: Ctx) -> Response:
    aid = _account_id(ctx)
    account = await _account(ctx, aid)
    months = statements.months_of(account["created_at"], datetime.now(UTC),
                                  ctx.state.settings.tz)
    return ctx.render("statements.html", months=months, account=account,
                      base=f"/console/admin/accounts/{aid}/statements")


# ---------------------------------------------------------------- admin: codes


async def codes_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    rows = await store.list_codes(ctx.state.engine, limit=LISTED)
    now = datetime.now(UTC)
    for r in rows:
        r["status"] = code_status(r, now)
    return ctx.render("admin_codes.html", status, codes=rows, **extra)


async def codes_get(ctx: Ctx) -> Response:
    return await codes_page(ctx)


async def create_codes(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("count", "amount", "batch", "days")}
    try:
        count = int(values["count"]) if values["count"].isdigit() and \
            len(values["count"]) < 6 else 0
        try:
            amount = parse_usd(values["amount"].lstrip("$") or "0")
        except MoneyError:
            raise InvalidRequest("The amount is an exact USD amount, e.g. 10 or 2.50.",
                                 param="amount", code="invalid_amount") from None
        label = values["batch"]
        if len(label) > 100 or any(ord(c) < 32 for c in label):
            raise InvalidRequest("A batch label has at most 100 characters.", param="batch",
                                 code="invalid_value")
        expires = None
        if values["days"]:
            if not values["days"].isdigit() or not 0 < int(values["days"]) <= 36_500:
                raise InvalidRequest("Valid for 1 to 36500 days, or empty for no expiry.",
                                     param="days", code="invalid_value")
            expires = datetime.now(UTC) + timedelta(days=int(values["days"]))
        made = await codes.create_batch(ctx.state.engine, count, amount, batch=label,
                                        expires_at=expires, actor=f"{ctx.user.name} (console)")
    except GatewayError as exc:
        return await codes_page(ctx, exc.status, error=exc.message, form=values)
    return await codes_page(ctx, 201, made=made.codes, made_amount=amount, made_batch=label)


async def revoke_code(ctx: Ctx) -> Response:
    code_id = int(ctx.request.path_params["code_id"])
    n = await store.revoke(ctx.state.engine, code_id=code_id) if code_id <= 2**31 - 1 else 0
    return RedirectResponse(f"/console/admin/codes?revoked={n}", 303)


async def revoke_batch(ctx: Ctx) -> Response:
    label = str((await ctx.request.form()).get("batch", ""))[:100]
    n = await store.revoke(ctx.state.engine, batch=label)
    return RedirectResponse(f"/console/admin/codes?revoked={n}", 303)

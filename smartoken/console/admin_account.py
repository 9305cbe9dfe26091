"""Admin pages: one account — its role, disabling it, resetting its console password — and
editing every field of its keys (name, families, budgets, rpm/tpm, expiry), through the admin
API's validation (``admin_common.key_changes``)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.responses import RedirectResponse, Response

from smartoken.api import admin_common, admin_ops
from smartoken.api.admin_views import key_status
from smartoken.auth.passwords import hash_password
from smartoken.console.http import Ctx
from smartoken.errors import GatewayError, NotFound
from smartoken.i18n.message import N_
from smartoken.store import money_repo, repo


def _account_id(ctx: Ctx) -> int:
    return int(ctx.request.path_params["account_id"])


async def _account(ctx: Ctx) -> dict[str, Any]:
    row = await repo.get_account(ctx.state.engine, account_id=_account_id(ctx))
    if row is None:
        raise NotFound(N_("No such account."), code="account_not_found")
    return row


async def account_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    account = await _account(ctx)
    keys = await repo.list_keys(ctx.state.engine, int(account["id"]))
    for k in keys:
        k["status"] = key_status(k)
        k["family_list"] = orjson.loads(k["families"]) if k["families"] else []
        exp = k["expires_at"]
        k["expires_date"] = exp.astimezone(ctx.state.settings.tz).date().isoformat() \
            if exp is not None and exp.tzinfo else (exp.date().isoformat() if exp else "")
    return ctx.render("admin_account.html", status, account=account, keys=keys,
                      families=sorted(ctx.state.catalog.families),
                      family_map=ctx.state.catalog.families, **extra)


async def account_get(ctx: Ctx) -> Response:
    return await account_page(ctx)


def _back(ctx: Ctx, note: str) -> Response:
    return RedirectResponse(f"/console/admin/accounts/{_account_id(ctx)}?done={note}", 303)


async def set_role(ctx: Ctx) -> Response:
    account = await _account(ctx)
    role = str((await ctx.request.form()).get("role", ""))
    if role not in ("user", "admin"):
        return await account_page(ctx, 400, error=N_("The role is user or admin."))
    if int(account["id"]) == ctx.user.id and role != "admin":
        return await account_page(ctx, 400, error=N_("You cannot take the admin role from "
                                                     "yourself."))
    await money_repo.set_role(ctx.state.engine, int(account["id"]), role)
    ctx.state.keys.clear()
    return _back(ctx, "role")


async def set_disabled(ctx: Ctx) -> Response:
    account = await _account(ctx)
    disabled = (await ctx.request.form()).get("disabled") == "1"
    if int(account["id"]) == ctx.user.id and disabled:
        return await account_page(ctx, 400, error=N_("You cannot disable your own account."))
    await money_repo.set_disabled(ctx.state.engine, int(account["id"]), disabled)
    ctx.state.keys.clear()
    return _back(ctx, "disabled" if disabled else "enabled")


async def reset_password(ctx: Ctx) -> Response:
    account = await _account(ctx)
    password = str((await ctx.request.form()).get("password", "")) or \
        secrets.token_urlsafe(12)
    if len(password) < 8 or len(password) > 200:
        return await account_page(ctx, 400, error=N_("A password has 8 to 200 characters."))
    await repo.set_password(ctx.state.engine, int(account["id"]), hash_password(password))
    shown = None if (await ctx.request.form()).get("password") else password
    return await account_page(ctx, reset={"password": shown})


async def edit_key(ctx: Ctx) -> Response:
    """Every field of a key of this account; empty boxes remove a limit."""
    account = await _account(ctx)
    key_id = int(ctx.request.path_params["key_id"])
    form = await ctx.request.form()
    data: dict[str, Any] = {"name": str(form.get("name", "")).strip() or None}
    families = [str(f) for f in form.getlist("families")]
    data["families"] = families or None
    for name in ("daily_budget", "monthly_budget"):
        data[name] = str(form.get(name, "")).strip().lstrip("$") or None
    for name in ("rpm", "tpm"):
        raw = str(form.get(name, "")).strip()
        if raw and (not raw.isdigit() or len(raw) > 9):
            label = N_("Requests per minute") if name == "rpm" else N_("Tokens per minute")
            return await account_page(ctx, 400, error=N_("%(field)s must be a whole number.",
                                                         field=label))
        data[name] = int(raw) if raw else None
    raw = str(form.get("expires", "")).strip()
    if raw:
        try:
            last = datetime.fromisoformat(raw).date()
        except ValueError:
            return await account_page(ctx, 400, error=N_("The expiry must be a date."))
        tz = ctx.state.settings.tz
        data["expires_at"] = (datetime(last.year, last.month, last.day, tzinfo=tz)
                              + timedelta(days=1)).isoformat()
    else:
        data["expires_at"] = None
    try:
        await admin_common.key_or_404(ctx.state, key_id, int(account["id"]))
        changes = admin_common.key_changes(ctx.state, data)
        if changes:
            await admin_ops.update_key(ctx.state, key_id, changes)
    except GatewayError as exc:
        return await account_page(ctx, exc.status, error=exc.text)
    return _back(ctx, f"key-{key_id}")


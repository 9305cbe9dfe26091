"""Admin pages: providers and routes with live health; accounts and wallet credits."""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.responses import RedirectResponse, Response

from smartoken.api import admin_ops
from smartoken.api.admin_input import MAX_MICRO
from smartoken.api.http import JSONResponse
from smartoken.auth.passwords import hash_password
from smartoken.console.http import Ctx
from smartoken.errors import InvalidRequest
from smartoken.i18n.message import N_
from smartoken.money import MoneyError, parse_usd
from smartoken.state import AppState
from smartoken.store import repo


def route_table(state: AppState) -> list[dict[str, Any]]:
    """Every configured route (enabled or not) with its live health on this gateway."""
    now = time.monotonic()
    out: list[dict[str, Any]] = []
    for r in state.settings.routes:
        route_id = f"{r.model}:{r.provider}/{r.upstream_model}"
        health = state.router.health.routes.get(route_id)
        view = health.view(now) if health else {
            "state": "closed", "cooldown_remaining_s": 0.0, "success_rate": None,
            "p50_latency_ms": None, "p50_ttft_ms": None, "successes": 0, "failures": 0,
            "last_error": None}
        out.append({"id": route_id, "model": r.model, "provider": r.provider,
                    "upstream_model": r.upstream_model, "priority": r.priority,
                    "weight": r.weight, "enabled": r.enabled, "health": view})
    out.sort(key=lambda r: (r["model"], -r["priority"], r["provider"]))
    return out


async def routes_page(ctx: Ctx) -> Response:
    providers = [{"name": p.name, "dialect": p.dialect, "base_url": p.base_url or "built in",
                  "demo": p.is_demo, "key_set": bool(p.api_key)}
                 for p in ctx.state.settings.providers.values()]
    routes = route_table(ctx.state)
    return ctx.render("admin_routes.html", providers=providers, routes=routes)


async def health_json(ctx: Ctx) -> Response:
    return JSONResponse({"routes": {r["id"]: r["health"] for r in route_table(ctx.state)}})


async def accounts_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    accounts = await repo.list_accounts(ctx.state.engine)
    return ctx.render("admin_accounts.html", status, accounts=accounts, **extra)


async def accounts_get(ctx: Ctx) -> Response:
    return await accounts_page(ctx)


async def create_account(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    name = str(form.get("name", "")).strip()
    role = "admin" if form.get("role") == "admin" else "user"
    if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").replace(
            ".", "").replace("@", "").isalnum():
        return await accounts_page(ctx, 400, error=N_("An account name is 1-100 letters, "
                                                      "digits, and - _ . @"))
    password = str(form.get("password", "")) or secrets.token_urlsafe(12)
    if len(password) < 8:
        return await accounts_page(ctx, 400, error=N_("A password has at least 8 characters."))
    try:
        account_id = await repo.create_account(ctx.state.engine, name, role,
                                               hash_password(password))
    except repo.Conflict as exc:
        return await accounts_page(ctx, 409, error=exc.args[0])
    shown = None if form.get("password") else password
    return await accounts_page(ctx, 201, created={"id": account_id, "name": name,
                                                  "password": shown})


async def credit(ctx: Ctx) -> Response:
    """The same rules as the admin API's wallet transactions (admin_ops.post_transaction): a
    negative adjustment may not take the wallet below zero, counting reservations."""
    form = await ctx.request.form()
    state = ctx.state
    reason = str(form.get("reason", ""))[:500]
    try:
        account_id = int(str(form.get("account_id", "")))
        amount = parse_usd(str(form.get("amount", "")).strip().lstrip("$"))
    except (ValueError, MoneyError):
        return await accounts_page(ctx, 400, error=N_("Pick an account and a USD amount such "
                                                      "as 25 or 0.50."))
    adjust = form.get("kind") == "adjustment"
    if amount == 0 or (amount < 0 and not adjust):
        return await accounts_page(ctx, 400, error=N_("A credit must be positive; use an "
                                                      "adjustment for corrections."))
    if abs(amount) > MAX_MICRO or not 0 < account_id < 2**31 or "\x00" in reason:
        return await accounts_page(ctx, 400, error=N_("That amount, account or reason cannot "
                                                      "be recorded."))
    if await repo.get_account(state.engine, account_id=account_id) is None:
        raise InvalidRequest(N_("No such account."), param="account_id")
    try:
        txn, _balance = await admin_ops.post_transaction(
            state, account_id, "adjustment" if adjust else "credit", amount,
            actor=f"console:{ctx.user.name}", reason=reason)
    except InvalidRequest as exc:
        return await accounts_page(ctx, 400, error=exc.text)
    return RedirectResponse(f"/console/admin/accounts?credited={txn}", 303)

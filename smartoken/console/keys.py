"""API keys: create (the secret shown once), list with spend so far, revoke."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from smartoken.auth.keys import generate_key
from smartoken.console import store
from smartoken.console.http import Ctx
from smartoken.errors import InvalidRequest, NotFound
from smartoken.i18n.message import N_, Msg
from smartoken.money import MoneyError, parse_usd
from smartoken.store import repo


def _budget(form: FormData, field: str, label: Msg) -> int | None:
    raw = str(form.get(field, "")).strip().lstrip("$")
    if not raw:
        return None
    try:
        micro = parse_usd(raw)
    except MoneyError:
        raise InvalidRequest(N_("The %(label)s must be a USD amount such as 5 or 0.50.",
                                label=label), param=field) from None
    if micro <= 0:
        raise InvalidRequest(N_("The %(label)s must be more than $0.", label=label),
                             param=field)
    return micro


def key_fields(ctx: Ctx, form: FormData) -> repo.KeyFields:
    name = str(form.get("name", "")).strip()
    if not name or len(name) > 100:
        raise InvalidRequest(N_("Give the key a name (at most 100 characters)."), param="name")
    families = [str(f) for f in form.getlist("families")]
    for f in families:
        if f not in ctx.state.catalog.families:
            raise InvalidRequest(N_("Unknown model family %(family)s.", family=repr(f)),
                                 param="families")
    expires_at = None
    raw = str(form.get("expires", "")).strip()
    if raw:
        try:
            last = date.fromisoformat(raw)
        except ValueError:
            raise InvalidRequest(N_("The expiry must be a date."), param="expires") from None
        tz = ctx.state.settings.tz
        expires_at = datetime(last.year, last.month, last.day, tzinfo=tz) + timedelta(days=1)
        if expires_at <= datetime.now(UTC):
            raise InvalidRequest(N_("The expiry date is in the past."), param="expires")
    return repo.KeyFields(
        name=name, families=families or None,
        daily_budget_micro=_budget(form, "daily_budget", N_("daily budget")),
        monthly_budget_micro=_budget(form, "monthly_budget", N_("monthly budget")),
        expires_at=expires_at)


async def _page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    engine = ctx.state.engine
    _, day, month = ctx.state.windows.now()
    keys = await repo.list_keys(engine, ctx.user.id)
    spend = await store.key_spend_table(engine, ctx.user.id, day, month)
    now = datetime.now(UTC)
    rows = []
    for k in reversed(keys):
        exp = k["expires_at"]
        if exp is not None and exp.tzinfo is None:
            exp = exp.replace(tzinfo=UTC)
        state = "revoked" if k["revoked_at"] else "expired" if exp and exp <= now else "active"
        rows.append({**k, "state": state,
                     "valid_through": (exp - timedelta(seconds=1)).astimezone(
                         ctx.state.settings.tz).date().isoformat() if exp else None,
                     "families_list": orjson.loads(k["families"]) if k["families"] else None,
                     "spend": spend.get(int(k["id"]), {"day": 0, "month": 0, "total": 0,
                                                       "requests": 0})})
    families = sorted(ctx.state.catalog.families.values(), key=lambda f: f.name.lower())
    return ctx.render("keys.html", status, keys=rows, families=families,
                      family_map=ctx.state.catalog.families, **extra)


async def keys_page(ctx: Ctx) -> Response:
    probe = Response()
    flash = ctx.console.sessions.pop_flash(ctx.request, probe, ctx.user)
    new_key = orjson.loads(flash) if flash else None
    response = await _page(ctx, new_key=new_key)
    for value in probe.headers.getlist("set-cookie"):
        response.headers.append("set-cookie", value)
    return response


async def create_key(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    try:
        fields = key_fields(ctx, form)
    except InvalidRequest as err:
        return await _page(ctx, 400, error=err.text, form=form)
    secret, prefix, digest = generate_key()
    key_id = await repo.insert_key(ctx.state.engine, ctx.user.id, prefix, digest, fields)
    # Post/redirect/get: a reload shows the list, not a second key. The secret rides once in an
    # encrypted, session-bound cookie and is shown by the next page view only.
    response = RedirectResponse("/console/keys", 303)
    ctx.console.sessions.flash(ctx.request, response, ctx.user, orjson.dumps(
        {"id": key_id, "name": fields.name, "secret": secret}).decode())
    return response


async def revoke_key(ctx: Ctx) -> Response:
    key_id = int(ctx.request.path_params["key_id"])
    key = await repo.get_key(ctx.state.engine, key_id) if 0 < key_id < 2**31 else None
    if key is None or (key["account_id"] != ctx.user.id and not ctx.user.is_admin):
        raise NotFound(N_("No such key."), code="key_not_found")
    if key["revoked_at"] is None:
        await repo.update_key(ctx.state.engine, key_id, {"revoked_at": datetime.now(UTC)})
    ctx.state.keys.clear()  # effective on this gateway's next request; others poll
    back = "/console/admin/accounts" if key["account_id"] != ctx.user.id else "/console/keys"
    return RedirectResponse(f"{back}?revoked={key_id}", 303)

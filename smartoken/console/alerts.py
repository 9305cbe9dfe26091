"""The Alerts page: the account's low-balance threshold, key-budget percents, mail recipient,
webhook URL and secret (shown once, rotatable), and the history of alerts fired."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from smartoken.alerts import deliver, edit, store
from smartoken.auth.secretbox import SecretBox
from smartoken.console.http import Ctx
from smartoken.errors import InvalidRequest
from smartoken.money import MoneyError, format_usd, parse_usd

HISTORY = 50


def _box(ctx: Ctx) -> SecretBox | None:
    keys = ctx.state.settings.secret_keys
    return SecretBox(keys) if keys else None


def recent(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History rows as the templates show them (``_alerts.html``)."""
    out = []
    for r in rows:
        out.append({**r, "label": r["key_name"] or (f"#{r['key_id']}" if r["key_id"] else ""),
                    "webhook_where": deliver.where(r["webhook_url"])})
    return out


def form_changes(ctx: Ctx, form: FormData) -> dict[str, Any]:
    raw = str(form.get("low_balance", "")).strip().lstrip("$")
    try:
        low = parse_usd(raw) if raw else None
    except MoneyError:
        raise InvalidRequest("The low-balance threshold must be a USD amount such as 5 or "
                             "0.50.", param="low_balance") from None
    pcts: list[Any] = []
    for part in str(form.get("percents", "")).replace("，", ",").split(","):
        part = part.strip().rstrip("%")
        if part:
            pcts.append(int(part) if part.isascii() and part.isdigit() and len(part) < 4
                        else part)
    mail = str(form.get("email", "")).strip()
    return {"low_balance_micro": edit.threshold(low), "key_percents": edit.percents(pcts),
            "email": edit.email(mail) if mail else None,
            "email_enabled": form.get("email_enabled") == "on",
            "webhook_url": edit.webhook(str(form.get("webhook_url", "")),
                                        ctx.state.settings.egress)}


async def _page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    engine, account = ctx.state.engine, ctx.user.id
    s = await store.get_settings(engine, account)
    view = edit.view(s, await store.account_email(engine, account))
    rows = recent(await store.history(engine, account, HISTORY))
    low = s.low_balance_micro
    low_text = "" if low is None else format_usd(low).rstrip("0").rstrip(".")
    return ctx.render("alerts.html", status, settings=view, low_text=low_text, alerts=rows,
                      **extra)


async def alerts_page(ctx: Ctx) -> Response:
    probe = Response()
    secret = ctx.console.sessions.pop_flash(ctx.request, probe, ctx.user)
    response = await _page(ctx, new_secret=secret,
                           saved=ctx.request.query_params.get("saved") == "1")
    for value in probe.headers.getlist("set-cookie"):
        response.headers.append("set-cookie", value)
    return response


async def save(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    try:
        values = form_changes(ctx, form)
    except InvalidRequest as err:
        return await _page(ctx, 400, error=err.message, form=form)
    done = await edit.apply(ctx.state.engine, ctx.user.id, values, _box(ctx))
    if ctx.state.alerts is not None:  # a new threshold may be crossed already
        ctx.state.alerts.note_accounts([ctx.user.id])
    return _shown_once(ctx, "/console/alerts?saved=1", done.new_secret)


async def rotate(ctx: Ctx) -> Response:
    secret = await edit.rotate(ctx.state.engine, ctx.user.id, _box(ctx))
    return _shown_once(ctx, "/console/alerts", secret)


def _shown_once(ctx: Ctx, target: str, secret: str | None) -> Response:
    """Post/redirect/get; a new secret rides once in the session's encrypted flash cookie."""
    response = RedirectResponse(target, 303)
    if secret:
        ctx.console.sessions.flash(ctx.request, response, ctx.user, secret)
    return response

"""Admin: the sign-up policy, the trial credit and invite codes (issue 15)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.responses import RedirectResponse, Response

from smartoken.config import SIGNUP_POLICIES
from smartoken.console.http import Ctx, locale_of
from smartoken.i18n.catalog import translations
from smartoken.money import MoneyError, format_usd, parse_usd
from smartoken.signup.rules import invite_hash, invite_prefix, new_invite_code
from smartoken.signup.service import Signup
from smartoken.store import repo, signup_repo

MAX_BATCH = 100
MAX_TRIAL = 10_000 * 1_000_000  # $10,000


def _service(ctx: Ctx) -> Signup:
    service: Signup = ctx.request.app.state.signup
    return service


async def signup_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    policy = await _service(ctx).policy()
    invites = await signup_repo.list_invites(ctx.state.engine)
    now = repo.now()
    for inv in invites:
        inv["state"] = signup_repo.invite_state(inv, now)
    return ctx.render("admin_signup.html", status, policy=policy, invites=invites,
                      policies=SIGNUP_POLICIES, trial_plain=_plain(policy.trial_micro),
                      mail_configured=ctx.state.settings.smtp is not None,
                      public_url=ctx.state.settings.public_url, **extra)


async def signup_get(ctx: Ctx) -> Response:
    return await signup_page(ctx, saved=ctx.request.query_params.get("saved") == "1")


def _plain(micro: int) -> str:
    """``5.25`` for 5,250,000 micro-USD: what the form's field reads back exactly."""
    whole, frac = format_usd(micro).split(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def _t(ctx: Ctx, message: str) -> str:
    return translations(locale_of(ctx.request)).gettext(message)


async def save_policy(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    mode = str(form.get("policy", ""))
    try:
        trial: int = parse_usd(str(form.get("trial_credit", "0")).strip().lstrip("$") or "0")
    except MoneyError:
        trial = -1  # refused below
    if mode not in SIGNUP_POLICIES or not 0 <= trial <= MAX_TRIAL:
        return await signup_page(ctx, 400, error=_t(
            ctx, "Pick a policy and a trial credit between 0 and 10000 USD."))
    await _service(ctx).set_policy(mode, trial)
    return RedirectResponse("/console/admin/signup?saved=1", 303)


async def create_invites(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    try:
        count = int(str(form.get("count", "1")))
        days_raw = str(form.get("expires_days", "")).strip()
        days = int(days_raw) if days_raw else None
    except ValueError:
        count, days = 0, None
    note = str(form.get("note", ""))[:200]
    if not 1 <= count <= MAX_BATCH or (days is not None and not 1 <= days <= 3650):
        return await signup_page(ctx, 400, error=_t(
            ctx, "Generate 1 to 100 codes; an expiry is 1 to 3650 days, or empty for none."))
    codes = [new_invite_code() for _ in range(count)]
    expires = repo.now() + timedelta(days=days) if days is not None else None
    await signup_repo.add_invites(ctx.state.engine,
                                  [(invite_hash(c), invite_prefix(c)) for c in codes],
                                  f"console:{ctx.user.name}", expires, note)
    return await signup_page(ctx, 201, new_codes=codes)


async def revoke_invite(ctx: Ctx) -> Response:
    await signup_repo.revoke_invite(ctx.state.engine, int(ctx.request.path_params["invite_id"]))
    return RedirectResponse("/console/admin/signup", 303)

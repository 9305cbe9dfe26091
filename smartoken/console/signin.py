"""Sign in and sign out."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smartoken.api.http import app_state
from smartoken.auth.passwords import verify_password
from smartoken.console.http import Ctx, console_of, harden, render
from smartoken.console.session import LOGIN_COOKIE, login_csrf, set_cookie, tokens_match
from smartoken.i18n.message import N_
from smartoken.store import repo, signup_repo

# Checked when the account does not exist, so that a wrong name costs the same as a wrong
# password (no account enumeration by timing). The hash of a random, forgotten password.
DUMMY_HASH = ("scrypt$16384$8$1$ZfM/TCXG7Y4UXfwtK7i5EA==$j7eYDSPI"
              "sUbKR9+N+7QoAdPux4wWXueuhqse04yx8+o=")


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console/"


async def _login_page(request: Request, status: int = 200, error: str | None = None,
                      name: str = "") -> Response:
    console = console_of(request)
    token = login_csrf(request)
    policy = await request.app.state.signup.policy()  # "Create an account" when allowed
    response = render(request, console, "login.html", None, status, login_csrf=token,
                      error=error, name=name, next=_safe_next(request.query_params.get("next")),
                      signup_open=policy.mode != "closed",
                      reset_done=request.query_params.get("reset") == "1")
    set_cookie(request, response, LOGIN_COOKIE, token, 3600)
    return response


async def login_form(request: Request) -> Response:
    if await console_of(request).sessions.current(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), 303)
    return await _login_page(request)


async def login(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    token = form.get("csrf_token")
    if not tokens_match(request.cookies.get(LOGIN_COOKIE, ""),
                        token if isinstance(token, str) else None):
        return await _login_page(request, 403, N_("The sign-in form expired; please try again."))
    name = str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    address = request.client.host if request.client else ""
    wait = await console.throttle.retry_after(name, address)
    if wait is not None:
        seconds = max(1, int(wait + 0.999))
        response = await _login_page(request, 429, N_("Too many failed sign-ins: try again in "
                                                "%(n)s seconds.", n=seconds), name)
        response.headers["retry-after"] = str(seconds)
        return response
    engine = app_state(request).engine
    account = await repo.get_account(engine, name=name) if name else None
    if account is None and "@" in name:  # signed up by email (smartoken.signup)
        row = await signup_repo.account_by_email(engine, name.lower())
        account = await repo.get_account(engine, account_id=row["id"]) if row else None
    stored = account["password_hash"] if account else None
    ok = await asyncio.to_thread(verify_password, password, stored or DUMMY_HASH)
    ok = ok and stored is not None and account is not None and \
        account.get("disabled_at") is None
    if not ok or account is None:
        await console.throttle.failed(name, address)
        return await _login_page(request, 401, N_("Wrong account name or password."), name)
    await console.throttle.succeeded(name)
    response = RedirectResponse(_safe_next(str(form.get("next") or "")), 303)
    await console.sessions.start(request, response, int(account["id"]))
    return harden(response)


async def logout(ctx: Ctx) -> Response:
    response = RedirectResponse("/console/login", 303)
    await ctx.console.sessions.end(ctx.user, response)
    return response

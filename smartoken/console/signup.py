"""The console's doors for visitors (issue 15): sign up, "check your mail", the verification
landing, forgot password, reset password. No session yet: every form carries the sign-in
page's double-submit token (``LOGIN_COOKIE``), like the sign-in form. The rules live in
``smartoken.signup.service``; this module only renders them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smartoken.console.http import console_of, locale_of, render
from smartoken.console.session import LOGIN_COOKIE, login_csrf, set_cookie, tokens_match
from smartoken.i18n.catalog import translations
from smartoken.signup.links import LinkError
from smartoken.signup.rules import RuleError
from smartoken.signup.service import Signup, SignupClosed, Throttled, Visitor

FORM_LIMIT = 4096  # characters per field: an address, a password, a token


def _signup(request: Request) -> Signup:
    service: Signup = request.app.state.signup
    return service


def _t(request: Request, message: str, **values: Any) -> str:
    text = translations(locale_of(request)).gettext(message)
    return text % values if values else text


def visitor(request: Request) -> Visitor:
    return Visitor(request.client.host if request.client else "",
                   locale_of(request))


def _page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    token = login_csrf(request)
    response = render(request, console_of(request), template, None, status,
                      login_csrf=token, **context)
    set_cookie(request, response, LOGIN_COOKIE, token, 3600)
    return response


async def _form(request: Request) -> dict[str, str] | None:
    """The form's fields, or None when its double-submit token does not match."""
    form = await request.form()
    fields = {k: v[:FORM_LIMIT] for k, v in form.items() if isinstance(v, str)}
    if not tokens_match(request.cookies.get(LOGIN_COOKIE, ""), fields.get("csrf_token")):
        return None
    return fields


def _expired_form(request: Request, template: str, **context: Any) -> Response:
    return _page(request, template, 403,
                 error=_t(request, "The form expired; please try again."), **context)


def _throttled(request: Request, template: str, exc: Throttled, **context: Any) -> Response:
    seconds = max(1, int(exc.retry_after + 0.999))
    response = _page(request, template, 429, error=_t(
        request, "Too many requests for this address: try again in %(seconds)d seconds.",
        seconds=seconds), **context)
    response.headers["retry-after"] = str(seconds)
    return response


# ---------------------------------------------------------------- sign up


async def signup_form(request: Request) -> Response:
    policy = await _signup(request).policy()
    return _page(request, "signup.html", 200 if policy.mode != "closed" else 403,
                 policy=policy.mode, trial=policy.trial_micro, email="")


async def signup(request: Request) -> Response:
    policy = await _signup(request).policy()
    fields = await _form(request)
    ctx: dict[str, Any] = {"policy": policy.mode, "trial": policy.trial_micro,
                           "email": (fields or {}).get("email", "")}
    if fields is None:
        return _expired_form(request, "signup.html", **ctx)
    try:
        await _signup(request).sign_up(fields.get("email", ""), fields.get("password", ""),
                                       fields.get("invite_code", ""), visitor(request))
    except SignupClosed:
        return _page(request, "signup.html", 403, **{**ctx, "policy": "closed"})
    except RuleError as exc:
        return _page(request, "signup.html", 400, error=_t(request, exc.message),
                     field=exc.param, **ctx)
    except Throttled as exc:
        return _throttled(request, "signup.html", exc, **ctx)
    return RedirectResponse("/console/check-mail", 303)


async def check_mail(request: Request) -> Response:
    kind = request.query_params.get("for", "signup")
    return _page(request, "check_mail.html", kind="reset" if kind == "reset" else "signup",
                 resent=request.query_params.get("resent") == "1")


async def resend(request: Request) -> Response:
    fields = await _form(request)
    if fields is None:
        return _expired_form(request, "check_mail.html", kind="signup", resent=False)
    try:
        await _signup(request).resend_verification(fields.get("email", ""), visitor(request))
    except RuleError as exc:
        return _page(request, "check_mail.html", 400, error=_t(request, exc.message),
                     kind="signup", resent=False)
    except Throttled as exc:
        return _throttled(request, "check_mail.html", exc, kind="signup", resent=False)
    return RedirectResponse("/console/check-mail?resent=1", 303)


async def verify(request: Request) -> Response:
    """The link in the verification mail. A GET that changes state on purpose: the mail's
    link is all the visitor has; following it twice (or a mail scanner following it first)
    verifies once and credits the trial once."""
    try:
        done = await _signup(request).verify(request.query_params.get("token", ""))
    except LinkError as exc:
        message = ("This link has expired. Sign in and ask for a new one, or sign up again."
                   if exc.expired else "This link is not valid (altered, or for an older "
                   "address).")
        return _page(request, "verified.html", 400, error=_t(request, message))
    return _page(request, "verified.html", trial=done.trial_micro, first=done.first)


# ---------------------------------------------------------------- password reset


async def forgot_form(request: Request) -> Response:
    return _page(request, "forgot.html", email="")


async def forgot(request: Request) -> Response:
    fields = await _form(request)
    email = (fields or {}).get("email", "")
    if fields is None:
        return _expired_form(request, "forgot.html", email=email)
    try:
        await _signup(request).request_reset(email, visitor(request))
    except RuleError as exc:
        return _page(request, "forgot.html", 400, error=_t(request, exc.message), email=email)
    except Throttled as exc:
        return _throttled(request, "forgot.html", exc, email=email)
    return RedirectResponse("/console/check-mail?for=reset", 303)


def _bad_reset(request: Request, exc: LinkError) -> Response:
    message = ("This link has expired: ask for a new one." if exc.expired else
               "This link is not valid any more (altered, or the password was changed "
               "since): ask for a new one.")
    return _page(request, "reset.html", 400, error=_t(request, message), token="",
                 broken=True)


async def reset_form(request: Request) -> Response:
    token = request.query_params.get("token", "")
    try:
        await _signup(request).check_reset(token)
    except LinkError as exc:
        return _bad_reset(request, exc)
    return _page(request, "reset.html", token=token, broken=False)


async def reset(request: Request) -> Response:
    fields = await _form(request)
    token = (fields or {}).get("token", "")
    if fields is None:
        return _expired_form(request, "reset.html", token=token, broken=False)
    if fields.get("password", "") != fields.get("confirm", ""):
        return _page(request, "reset.html", 400, token=token, broken=False,
                     error=_t(request, "The two passwords differ."))
    try:
        await _signup(request).reset(token, fields.get("password", ""))
    except LinkError as exc:
        return _bad_reset(request, exc)
    except RuleError as exc:
        return _page(request, "reset.html", 400, error=_t(request, exc.message), token=token,
                     broken=False)
    return RedirectResponse("/console/login?reset=1", 303)

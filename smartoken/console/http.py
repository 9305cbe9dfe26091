"""The console's request plumbing: its context, page rendering, and the one wrapper every
console endpoint goes through (sign-in, admin role, CSRF, security headers, error pages)."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smartoken.api.http import app_state
from smartoken.catalog.model import localized
from smartoken.cluster.shared_limits import SharedLoginThrottle
from smartoken.console.session import Sessions, User, tokens_match
from smartoken.console.throttle import LoginThrottle
from smartoken.errors import AuthenticationFailed, GatewayError, InvalidRequest, PermissionDenied
from smartoken.i18n import formats, locales
from smartoken.i18n.catalog import js_strings, translations
from smartoken.i18n.errors import summary
from smartoken.i18n.message import N_, translate, translated
from smartoken.money import format_usd
from smartoken.state import AppState

if TYPE_CHECKING:  # Jinja is loaded with the first page (an API-only gateway never loads it)
    from starlette.templating import Jinja2Templates

TEMPLATES = Path(__file__).parent / "templates"
THEME_COOKIE = "st_theme"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'; object-src 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def usd(micro: int | None, places: int = 2) -> str:
    """$ amount from exact micro-USD: at least ``places`` decimals, trailing zeros trimmed."""
    if micro is None:
        return "—"
    whole, frac = format_usd(int(micro)).split(".")
    frac = frac.rstrip("0").ljust(places, "0")
    return f"${whole}.{frac}" if not whole.startswith("-") else f"-${whole[1:]}.{frac}"


def ms(value: int | None) -> str:
    """A duration in ms: "< 1 ms" for an answer faster than the clock's millisecond."""
    if value is None:
        return "—"
    return "< 1 ms" if int(value) < 1 else f"{int(value):,} ms"


# Reasons the gateway writes on wallet transactions (ledger, codes, sign-up, first start): shown
# in the reader's language; an admin's own reason is shown as written.
REASONS = (("usage ", N_("usage %(detail)s", detail="")),
           ("redemption code ", N_("redemption code %(detail)s", detail="")))
FIXED_REASONS = (N_("opening credit"), N_("first-start credit"),
                 N_("trial credit (email verified)"))


def reason(text: str | None, locale: str) -> str | None:
    if not text or locale == locales.DEFAULT:
        return text
    for prefix, msg in REASONS:
        if text.startswith(prefix):
            return translate(N_(msg.template, detail=text[len(prefix):]), locale)
    return translate(text, locale) if text in FIXED_REASONS else text


def make_templates(tz: ZoneInfo, locale: str = "en") -> Jinja2Templates:
    from starlette.templating import Jinja2Templates

    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.autoescape = True
    # Every visible string goes through gettext: ``{{ _("Sign in") }}``; one environment per
    # locale, so concurrent requests in different languages never share translations.
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]

    def money(micro: int | None) -> Markup:
        """A balance, spend, budget or total: four decimals everywhere (half-up: sub-cent
        spend stays visible), the exact amount in the tooltip. Per-request costs use
        ``usd(6)``, per-1M prices ``usd``."""
        if micro is None:
            return Markup("—")
        return Markup('<span class="usd" title="{}">{}</span>').format(
            formats.money(int(micro), locale, 6), formats.money(int(micro), locale))

    def usd_(micro: int | None, places: int = 2) -> str:
        if micro is None:
            return "—"
        if places == 6:
            return formats.money(int(micro), locale, 6)
        return formats.price(int(micro), locale)

    def dt(value: datetime | None, fmt: str = "") -> str:
        part = {"%Y-%m-%d": "date", "%H:%M:%S": "time"}.get(fmt, "datetime")
        return formats.when(value, tz, locale, part)

    env.filters.update(usd=usd_, money=money, ms=ms, dt=dt,
                       num=lambda n: formats.number(n, locale),
                       # A form field's USD amount: digits only, whatever the locale.
                       amount=lambda micro: usd(int(micro)).replace("$", ""),
                       # A value from code (a status, a kind, a message) in the page's language;
                       # unlike ``_(value)`` it is escaped like any value.
                       tr=lambda text: translate(str(text), locale) if text else text,
                       error_summary=lambda code: summary(code) if locale == "zh_CN" else "",
                       reason=lambda text: reason(text, locale))
    env.globals.update(locale=locale, html_lang=locales.HTML_LANG[locale],
                       locale_names=locales.NAMES,
                       # A family's or model's text as the catalog translates it (catalog/model.py).
                       local=lambda item, field: localized(item, field, locale))
    return templates


@dataclass(slots=True)
class Console:
    sessions: Sessions
    tz: ZoneInfo
    throttle: SharedLoginThrottle  # in Redis when configured (issue 12 item 17)
    _templates: dict[str, Jinja2Templates] = field(default_factory=dict)

    def templates(self, locale: str) -> Jinja2Templates:
        """The page templates in ``locale``'s language, made on the first page asked in it:
        a gateway that only relays never loads Jinja (issue 16: memory per worker)."""
        found = self._templates.get(locale)
        if found is None:
            if locale not in locales.SUPPORTED:  # one environment per supported locale, never more
                return self.templates(locales.DEFAULT)
            found = self._templates[locale] = make_templates(self.tz, locale)
        return found


async def open_console(state: AppState) -> Console:
    cluster = state.cluster
    throttle = SharedLoginThrottle(
        LoginThrottle(), cluster.redis if cluster else None,
        cluster.options.prefix if cluster else "st:", bool(cluster and cluster.options.fail_open))
    return Console(await Sessions.open(state.engine), state.settings.tz, throttle)


def locale_of(request: Request) -> str:
    return locales.negotiate(request.headers.get("accept-language"),
                             request.cookies.get(locales.COOKIE))


def theme_of(request: Request) -> str:
    """``light`` or ``dark`` when the user chose one (sticky cookie), else ``system``."""
    value = request.cookies.get(THEME_COOKIE, "")
    return value if value in ("light", "dark") else "system"


@dataclass(slots=True)
class Ctx:
    request: Request
    state: AppState
    console: Console
    user: User

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return render(self.request, self.console, template, self.user, status, **context)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def render(request: Request, console: Console, template: str, user: User | None,
           status: int = 200, **context: Any) -> Response:
    context.update(user=user, csrf=user.csrf if user else "", path=request.url.path,
                   gateway_url=gateway_url(request))
    locale = locale_of(request)
    if isinstance(context.get("error"), str):  # a form's error message (i18n/message.py)
        context["error"] = translate(context["error"], locale)
    context.update(theme=theme_of(request),
                   js_i18n=js_strings(locale).replace("<", "\\u003c"))
    response = console.templates(locale).TemplateResponse(request, template, context,
                                                          status_code=status)
    harden(response)
    return response


def gateway_url(request: Request) -> str:
    """This gateway's OpenAI base URL as the browser reached it."""
    return str(request.base_url).rstrip("/") + "/v1"


def harden(response: Any) -> Any:
    if isinstance(response, Response):  # a relayed stream sets its own headers
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
    return response


async def csrf_token_of(request: Request) -> str | None:
    token = request.headers.get("x-csrf-token")
    if token is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("csrf_token")
        token = value if isinstance(value, str) else None
    return token


Handler = Callable[[Ctx], Awaitable[Any]]


def endpoint(handler: Handler, *, admin: bool = False,
             api: bool = False) -> Callable[[Request], Awaitable[Any]]:
    """Wrap a console handler: a signed-in user (else the sign-in page, or 401 for ``api``),
    the admin role when ``admin``, a valid CSRF token on every unsafe method. Errors render as
    an HTML page (as the OpenAI JSON body for ``api`` endpoints)."""

    async def run(request: Request) -> Any:
        console = console_of(request)
        user = await console.sessions.current(request)
        try:
            if user is None:
                if request.method == "GET" and not api:
                    target = request.url.path + (f"?{request.url.query}"
                                                 if request.url.query else "")
                    return RedirectResponse(f"/console/login?next={quote(target)}", 303)
                raise AuthenticationFailed(N_("Sign in to the console first."),
                                           code="not_signed_in")
            if admin and not user.is_admin:
                raise PermissionDenied(N_("This page is for administrators."), code="admin_only")
            if request.method not in SAFE_METHODS and \
                    not tokens_match(user.csrf, await csrf_token_of(request)):
                raise PermissionDenied(N_("The form's security token is missing or stale; "
                                          "reload the page and try again."), code="csrf_failed")
            # Form fields only (a multipart upload is read, bounded, by its own handler: parsing
            # it here would consume the body the handler then waits for).
            if request.method not in SAFE_METHODS and request.headers.get(
                    "content-type", "").startswith("application/x-www-form-urlencoded") and any(
                    isinstance(v, str) and "\x00" in v for v in (await request.form()).values()):
                raise InvalidRequest(N_("A form field contains a NUL character."),
                                     code="invalid_value")
            return harden(await handler(Ctx(request, app_state(request), console, user)))
        except GatewayError as err:
            if api:
                raise
            return error_page(request, console, user, err)

    return run


def error_page(request: Request, console: Console, user: User | None,
               err: GatewayError) -> Response:
    """The error in the page's language: the whole message when the catalog has it
    (i18n/message.py), else a sentence chosen by its code (i18n/errors.py) before the English
    detail (marked ``lang="en"``)."""
    locale = locale_of(request)
    shown, detail = err, None
    if locale != locales.DEFAULT:
        shown = copy.copy(err)
        if str(err.text) == err.message and translated(err.text, locale):
            shown.message = translate(err.text, locale)
        else:
            shown.message, detail = summary(err.code, err.type) + "：", err.message
    return render(request, console, "error.html", user, err.status, error=shown,
                  detail=detail)

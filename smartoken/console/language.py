"""GET /console/lang?to=zh_CN&next=/console/usage: the language switch. It sets a sticky
cookie (a preference, not a credential: no sign-in or CSRF token needed) and goes back."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smartoken.console.http import harden
from smartoken.i18n import locales

YEAR = 365 * 24 * 3600


def _back(target: str | None) -> str:
    if target and target.startswith("/console") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return "/console/"


async def switch_language(request: Request) -> Response:
    wanted = request.query_params.get("to", "")
    response = RedirectResponse(_back(request.query_params.get("next")), 303)
    if wanted in locales.SUPPORTED:
        response.set_cookie(locales.COOKIE, wanted, max_age=YEAR, path="/", samesite="lax",
                            secure=request.url.scheme == "https")
    return harden(response)

"""Sign-up and password reset over JSON, without a key (docs/accounts.md):

    POST /account/signup           {email, password, invite_code?} -> 202 pending_verification
    POST /account/signup/resend    {email}                         -> 202
    POST /account/verify           {token}                         -> 200 {"verified": true}
    POST /account/password/forgot  {email}                         -> 202
    POST /account/password/reset   {token, password}               -> 200 {"reset": true}

The 202 answers are the same whether or not the address has an account. Errors are OpenAI
shaped: 403 ``signup_closed``, 400 ``invalid_email`` / ``weak_password`` / ``invalid_invite``
/ ``invalid_link`` / ``expired_link``, 429 ``too_many_requests`` with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartoken.api import admin_common as common
from smartoken.api.http import JSONResponse
from smartoken.errors import InvalidRequest, PermissionDenied, RateLimited
from smartoken.i18n.locales import negotiate
from smartoken.money import format_usd
from smartoken.signup.links import LinkError
from smartoken.signup.rules import RuleError
from smartoken.signup.service import Signup, SignupClosed, Throttled, Visitor

PENDING = {"status": "pending_verification",
           "message": "If the address can be used, a mail with a link is on its way."}


def signup_of(request: Request) -> Signup:
    service: Signup = request.app.state.signup
    return service


def visitor(request: Request) -> Visitor:
    return Visitor(request.client.host if request.client else "",
                   negotiate(request.headers.get("accept-language"), None))


def link_error(exc: LinkError) -> InvalidRequest:
    if exc.expired:
        return InvalidRequest("This link has expired; ask for a new one.", param="token",
                              code="expired_link")
    return InvalidRequest("This link is not valid (altered, already used, or for an older "
                          "password or address).", param="token", code="invalid_link")


def _guarded(handler: Callable[[Request, dict[str, Any]], Awaitable[Response]],
             allowed: tuple[str, ...], required: tuple[str, ...]
             ) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        data = await common.read_json(request, allowed, required)
        try:
            return await handler(request, data)
        except SignupClosed:
            raise PermissionDenied("Sign-up is closed: ask an administrator for an account.",
                                   code="signup_closed") from None
        except RuleError as exc:
            raise InvalidRequest(exc.message, param=exc.param, code=exc.code) from None
        except Throttled as exc:
            raise RateLimited("Too many requests for this address; try again later.",
                              exc.retry_after, code="too_many_requests") from None
        except LinkError as exc:
            raise link_error(exc) from None
    return run


async def signup(request: Request, data: dict[str, Any]) -> Response:
    await signup_of(request).sign_up(data.get("email"), data.get("password"),
                                     data.get("invite_code"), visitor(request))
    return JSONResponse(PENDING, status_code=202)


async def resend(request: Request, data: dict[str, Any]) -> Response:
    await signup_of(request).resend_verification(data.get("email"), visitor(request))
    return JSONResponse(PENDING, status_code=202)


async def verify(request: Request, data: dict[str, Any]) -> Response:
    done = await signup_of(request).verify(data.get("token"))
    return JSONResponse({"verified": True, "account_id": done.account_id,
                         "trial_credit_usd": format_usd(done.trial_micro)})


async def forgot(request: Request, data: dict[str, Any]) -> Response:
    await signup_of(request).request_reset(data.get("email"), visitor(request))
    return JSONResponse({"status": "sent_if_known",
                         "message": "If the address has an account, a reset link is on its "
                                    "way."}, status_code=202)


async def reset(request: Request, data: dict[str, Any]) -> Response:
    await signup_of(request).reset(data.get("token"), data.get("password"))
    return JSONResponse({"reset": True})


def signup_routes() -> list[Route]:
    return [
        Route("/account/signup", _guarded(signup, ("email", "password", "invite_code"),
                                          ("email", "password")), methods=["POST"]),
        Route("/account/signup/resend", _guarded(resend, ("email",), ("email",)),
              methods=["POST"]),
        Route("/account/verify", _guarded(verify, ("token",), ("token",)), methods=["POST"]),
        Route("/account/password/forgot", _guarded(forgot, ("email",), ("email",)),
              methods=["POST"]),
        Route("/account/password/reset", _guarded(reset, ("token", "password"),
                                                  ("token", "password")), methods=["POST"]),
    ]

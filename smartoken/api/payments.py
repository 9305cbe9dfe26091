"""POST /webhooks/stripe and /webhooks/paypal: the only way money reaches a wallet from a
payment provider. A delivery that does not verify, cannot be read or does not match its payment
answers 400 and changes nothing (the provider retries); a verified one is applied once
(``smartoken.payments``) and acknowledged with 200, duplicates included."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from smartoken.api.http import JSONResponse, app_state, read_body
from smartoken.errors import InvalidRequest, NotFound
from smartoken.payments.contract import WebhookRefused
from smartoken.payments.ledger import EventRefused
from smartoken.payments.service import Payments

MAX_WEBHOOK_BODY = 256 * 1024


def payments_of(request: Request) -> Payments:
    payments: Payments = request.app.state.payments
    return payments


async def _webhook(request: Request, name: str) -> JSONResponse:
    payments = payments_of(request)
    provider = payments.providers.get(name)
    if provider is None:
        raise NotFound(f"No {name} payments are configured on this gateway.",
                       code="provider_not_configured")
    body = await read_body(request, MAX_WEBHOOK_BODY)
    try:
        applied = await payments.webhook(app_state(request), provider, body, request.headers)
    except (WebhookRefused, EventRefused) as exc:
        err = InvalidRequest(str(exc), code=exc.code)
        if exc.code == "verification_unavailable":
            err.status = 503
        raise err from None
    return JSONResponse({"received": True, "outcome": applied.outcome})


async def stripe_webhook(request: Request) -> JSONResponse:
    return await _webhook(request, "stripe")


async def paypal_webhook(request: Request) -> JSONResponse:
    return await _webhook(request, "paypal")


def payment_routes() -> list[Route]:
    return [Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
            Route("/webhooks/paypal", paypal_webhook, methods=["POST"])]

"""Stripe Checkout through the official ``stripe`` library.

Checkout: a Session in ``payment`` mode for one line of exactly the chosen cents, with our
payment id and the account in ``metadata`` and ``client_reference_id`` (copied to the
PaymentIntent, so refunds and disputes name it). Webhooks: ``stripe.Webhook.construct_event``
verifies the ``Stripe-Signature`` header (HMAC-SHA256 of ``"<t>.<body>"`` with the endpoint's
secret) and refuses a timestamp older than the tolerance (a replay). The events acted on:
``checkout.session.completed`` (when paid; else ``checkout.session.async_payment_succeeded``),
``checkout.session.expired`` and ``checkout.session.async_payment_failed`` (a pending payment
becomes ``expired``), ``charge.refunded`` (the cumulative ``amount_refunded``),
``charge.dispute.created`` and ``charge.dispute.closed`` (won).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import stripe

from smartoken.payments.contract import (
    CURRENCY,
    Checkout,
    Delivery,
    Disputed,
    DisputeWon,
    Event,
    Expired,
    Paid,
    PaymentRef,
    ProviderError,
    Refunded,
    WebhookRefused,
)
from smartoken.payments.settings import STRIPE_API, StripeSettings

MAX_BODY = 256 * 1024  # a Stripe event is a few KB
CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebhookRefused(f"the event's {where} is not an object", "invalid_event")
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, dict):  # an expanded object: its id
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _cents(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**12:
        raise WebhookRefused(f"the event's {where} is not an amount of cents", "invalid_event")
    return value


def _meta(obj: dict[str, Any], key: str) -> str | None:
    meta = obj.get("metadata")
    return _text(meta.get(key)) if isinstance(meta, dict) else None


def read_event(data: dict[str, Any]) -> Delivery:
    """A verified event's JSON as a Delivery (pure: unit-tested without signatures)."""
    event_id, kind = _text(data.get("id")) or "", _text(data.get("type")) or ""
    obj = _obj(_obj(data.get("data"), "data").get("object"), "data.object")
    currency = _text(obj.get("currency")) or ""
    event: Event | None = None
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        if obj.get("mode") == "payment" and obj.get("payment_status") == "paid":
            event = Paid(PaymentRef(_meta(obj, "payment_id"), _text(obj.get("id"))),
                         _cents(obj.get("amount_total"), "amount_total"), currency,
                         _text(obj.get("payment_intent")), _text(obj.get("client_reference_id")))
    elif kind in ("checkout.session.expired", "checkout.session.async_payment_failed"):
        event = Expired(PaymentRef(_meta(obj, "payment_id"), _text(obj.get("id"))))
    elif kind == "charge.refunded":
        event = Refunded(PaymentRef(_meta(obj, "payment_id"),
                                    charge_id=_text(obj.get("payment_intent"))),
                         _cents(obj.get("amount_refunded"), "amount_refunded"), currency,
                         cumulative=True)
    elif kind in ("charge.dispute.created", "charge.dispute.closed"):
        ref = PaymentRef(_meta(obj, "payment_id"), charge_id=_text(obj.get("payment_intent")))
        dispute = _text(obj.get("id")) or ""
        cents = _cents(obj.get("amount"), "amount")
        if not dispute:
            raise WebhookRefused("a dispute without an id", "invalid_event")
        if kind == "charge.dispute.created":
            event = Disputed(ref, dispute, cents, currency)
        elif obj.get("status") == "won":
            event = DisputeWon(ref, dispute, cents, currency)
    return Delivery(event_id, kind, event)


class StripeProvider:
    name = "stripe"
    label = "Stripe (card)"

    def __init__(self, settings: StripeSettings) -> None:
        self._settings = settings
        self._http = stripe.AIOHTTPClient(timeout=30)
        self._client = stripe.StripeClient(
            settings.secret_key, base_addresses={"api": settings.api_base},
            http_client=self._http, max_network_retries=2)
        origin = CHECKOUT_ORIGIN
        if settings.api_base != STRIPE_API:  # a stand-in serves its own checkout page
            parts = urlsplit(settings.api_base)
            origin = f"{parts.scheme}://{parts.netloc}"
        self.checkout_origins: tuple[str, ...] = (origin,)

    async def create_checkout(self, payment_id: str, account_id: int, cents: int,
                              success_url: str, cancel_url: str) -> Checkout:
        meta = {"payment_id": payment_id, "account_id": str(account_id)}
        params: Any = {
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": CURRENCY, "unit_amount": cents,
                "product_data": {"name": "SmarToken credit"}}}],
            "client_reference_id": str(account_id),
            "metadata": meta,
            "payment_intent_data": {"metadata": meta},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params=params, options={"idempotency_key": payment_id})
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe refused the checkout ({type(exc).__name__}, "
                                f"HTTP {exc.http_status})") from None
        data = session.to_dict()
        url, sid = data.get("url"), data.get("id")
        if not isinstance(url, str) or not isinstance(sid, str) or \
                data.get("amount_total") != cents:
            raise ProviderError("Stripe answered the checkout without a URL or another amount")
        return Checkout(url, sid)

    async def verify(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        if len(body) > MAX_BODY:
            raise WebhookRefused("the body is too large for a Stripe event", "body_too_large")
        try:
            stripe.Webhook.construct_event(body, headers.get("stripe-signature"),
                                           self._settings.webhook_secret,
                                           tolerance=self._settings.tolerance_s)
        except stripe.SignatureVerificationError:
            raise WebhookRefused("the Stripe-Signature header does not verify (wrong secret, "
                                 "altered body, or a timestamp outside the tolerance)",
                                 "bad_signature") from None
        except Exception:  # signed but unreadable: not UTF-8, not JSON, not an event
            raise WebhookRefused("the body is not a Stripe event", "invalid_event") from None
        try:
            data = json.loads(body)
        except ValueError:
            raise WebhookRefused("the body is not JSON", "invalid_event") from None
        return read_event(_obj(data, "body"))

    async def complete(self, checkout_id: str) -> Paid | None:
        return None  # the checkout.session.completed webhook credits

    async def aclose(self) -> None:
        await self._http.close_async()

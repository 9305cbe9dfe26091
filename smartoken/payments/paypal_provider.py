"""PayPal through the Orders API v2 (plain aiohttp): an OAuth2 client-credentials token, an
order with intent CAPTURE for exactly the chosen amount (our payment id as ``custom_id``), the
payer's approve link, and the capture when the browser comes back. Webhooks are verified by
PayPal itself (``POST /v1/notifications/verify-webhook-signature`` with the transmission
headers and the configured webhook id); a transmission older than the tolerance is refused.
Events acted on: ``PAYMENT.CAPTURE.COMPLETED``, ``PAYMENT.CAPTURE.REFUNDED`` (each refund by its
id), ``CUSTOMER.DISPUTE.CREATED`` and ``CUSTOMER.DISPUTE.RESOLVED`` (in the seller's favour);
and, for a checkout that ends unpaid, ``PAYMENT.CAPTURE.DENIED``/``DECLINED`` and
``CHECKOUT.PAYMENT-APPROVAL.REVERSED`` (an approved order not captured in time, which PayPal
cancels): the pending payment becomes ``expired``, no money moves.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from smartoken.payments.contract import (
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
from smartoken.payments.settings import PAYPAL_API, PayPalSettings

MAX_BODY = 256 * 1024
ORDER_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
HEADERS = ("paypal-transmission-id", "paypal-transmission-time", "paypal-cert-url",
           "paypal-auth-algo", "paypal-transmission-sig")


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebhookRefused(f"the event's {where} is not an object", "invalid_event")
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def money(value: Any) -> tuple[int, str]:
    """PayPal's ``{"currency_code": "USD", "value": "10.00"}`` as (cents, currency), exactly."""
    amount = _obj(value, "amount")
    text, currency = amount.get("value"), _text(amount.get("currency_code")) or ""
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,2})?", text):
        raise WebhookRefused("the amount is not a decimal of cents", "invalid_event")
    try:
        cents = Decimal(text) * 100
    except InvalidOperation:
        raise WebhookRefused("the amount is not a decimal of cents", "invalid_event") from None
    return int(cents), currency


def _capture_of(resource: dict[str, Any]) -> str | None:
    """A refund's capture id, from its ``up`` link (…/v2/payments/captures/<id>)."""
    for link in resource.get("links") or ():
        if isinstance(link, dict) and link.get("rel") == "up":
            match = re.search(r"/captures/([A-Za-z0-9-]{1,64})$", str(link.get("href", "")))
            if match:
                return match.group(1)
    return None


def read_event(data: dict[str, Any]) -> Delivery:
    event_id, kind = _text(data.get("id")) or "", _text(data.get("event_type")) or ""
    res = _obj(data.get("resource"), "resource")
    event: Event | None = None
    if kind == "PAYMENT.CAPTURE.COMPLETED" and res.get("status") == "COMPLETED":
        related = (res.get("supplementary_data") or {}).get("related_ids") or {}
        order = _text(related.get("order_id")) if isinstance(related, dict) else None
        cents, currency = money(res.get("amount"))
        event = Paid(PaymentRef(_text(res.get("custom_id")), order), cents, currency,
                     _text(res.get("id")))
    elif kind in ("PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.DECLINED"):
        related = (res.get("supplementary_data") or {}).get("related_ids") or {}
        order = _text(related.get("order_id")) if isinstance(related, dict) else None
        event = Expired(PaymentRef(_text(res.get("custom_id")), order))
    elif kind == "CHECKOUT.PAYMENT-APPROVAL.REVERSED":
        units = res.get("purchase_units") or [{}]
        unit = units[0] if isinstance(units, list) and units and isinstance(units[0], dict) \
            else {}
        event = Expired(PaymentRef(_text(unit.get("custom_id")), _text(res.get("order_id"))))
    elif kind == "PAYMENT.CAPTURE.REFUNDED":
        refund = _text(res.get("id"))
        if refund is None:
            raise WebhookRefused("a refund without an id", "invalid_event")
        cents, currency = money(res.get("amount"))
        event = Refunded(PaymentRef(_text(res.get("custom_id")), charge_id=_capture_of(res)),
                         cents, currency, cumulative=False, refund_id=refund)
    elif kind in ("CUSTOMER.DISPUTE.CREATED", "CUSTOMER.DISPUTE.RESOLVED"):
        dispute = _text(res.get("dispute_id"))
        txns = res.get("disputed_transactions") or [{}]
        first = txns[0] if isinstance(txns, list) and txns and isinstance(txns[0], dict) else {}
        if dispute is None:
            raise WebhookRefused("a dispute without an id", "invalid_event")
        cents, currency = money(res.get("dispute_amount"))
        ref = PaymentRef(_text(first.get("custom")),
                         charge_id=_text(first.get("seller_transaction_id")))
        outcome = (res.get("dispute_outcome") or {})
        if kind == "CUSTOMER.DISPUTE.CREATED":
            event = Disputed(ref, dispute, cents, currency)
        elif isinstance(outcome, dict) and outcome.get("outcome_code") == \
                "RESOLVED_SELLER_FAVOUR":
            event = DisputeWon(ref, dispute, cents, currency)
    return Delivery(event_id, kind, event)


def paid_of_order(order: dict[str, Any], order_id: str) -> Paid | None:
    """The completed capture of an order (the capture call's answer, or GET order)."""
    for unit in order.get("purchase_units") or ():
        captures = ((unit.get("payments") or {}).get("captures") or ()) \
            if isinstance(unit, dict) else ()
        for cap in captures:
            if isinstance(cap, dict) and cap.get("status") == "COMPLETED":
                cents, currency = money(cap.get("amount"))
                return Paid(PaymentRef(_text(cap.get("custom_id")), order_id), cents, currency,
                            _text(cap.get("id")))
    return None


class PayPalProvider:
    name = "paypal"
    label = "PayPal"

    def __init__(self, settings: PayPalSettings) -> None:
        self._s = settings
        self._session: aiohttp.ClientSession | None = None
        self._token: tuple[str, float] | None = None
        parts = urlsplit(settings.api_base)
        self.checkout_origins: tuple[str, ...] = (
            ("https://www.paypal.com",) if settings.api_base == PAYPAL_API
            else ("https://www.sandbox.paypal.com",) if "sandbox.paypal.com" in parts.netloc
            else (f"{parts.scheme}://{parts.netloc}",))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30), cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def _call(self, method: str, path: str, body: Any = None, *,
                    request_id: str | None = None, ok: tuple[int, ...] = (200, 201)
                    ) -> tuple[int, dict[str, Any]]:
        headers = {"authorization": f"Bearer {await self._access_token()}",
                   "content-type": "application/json"}
        if request_id:
            headers["paypal-request-id"] = request_id
        try:
            async with self._http().request(method, self._s.api_base + path, json=body,
                                            headers=headers) as r:
                data = await r.json(content_type=None) if r.content_length != 0 else {}
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ProviderError(f"PayPal unreachable or unreadable ({type(exc).__name__})") \
                from None
        if status not in ok or not isinstance(data, dict):
            raise ProviderError(f"PayPal answered HTTP {status}")
        return status, data

    async def _access_token(self) -> str:
        if self._token and self._token[1] > time.monotonic():
            return self._token[0]
        pair = f"{self._s.client_id}:{self._s.client_secret}".encode()
        auth = {"authorization": "Basic " + base64.b64encode(pair).decode()}
        try:
            async with self._http().post(self._s.api_base + "/v1/oauth2/token", headers=auth,
                                         data={"grant_type": "client_credentials"}) as r:
                data = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ProviderError(f"PayPal token request failed ({type(exc).__name__})") \
                from None
        token = data.get("access_token") if isinstance(data, dict) else None
        if status != 200 or not isinstance(token, str):
            raise ProviderError(f"PayPal refused the client credentials (HTTP {status})")
        ttl = data.get("expires_in", 300)
        ttl = ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else 300
        self._token = (token, time.monotonic() + max(30, ttl - 60))
        return token

    async def create_checkout(self, payment_id: str, account_id: int, cents: int,
                              success_url: str, cancel_url: str) -> Checkout:
        value = f"{cents // 100}.{cents % 100:02d}"
        _, order = await self._call("POST", "/v2/checkout/orders", {
            "intent": "CAPTURE",
            "purchase_units": [{"reference_id": payment_id, "custom_id": payment_id,
                                "description": "SmarToken credit",
                                "amount": {"currency_code": "USD", "value": value}}],
            "payment_source": {"paypal": {"experience_context": {
                "return_url": success_url, "cancel_url": cancel_url,
                "user_action": "PAY_NOW", "shipping_preference": "NO_SHIPPING"}}},
        }, request_id=payment_id)
        order_id = _text(order.get("id"))
        approve = next((link.get("href") for link in order.get("links") or ()
                        if isinstance(link, dict)
                        and link.get("rel") in ("payer-action", "approve")), None)
        if order_id is None or not ORDER_ID.fullmatch(order_id) or not isinstance(approve, str):
            raise ProviderError("PayPal answered the order without an id or approve link")
        return Checkout(approve, order_id)

    async def complete(self, checkout_id: str) -> Paid | None:
        if not ORDER_ID.fullmatch(checkout_id):
            return None
        status, order = await self._call(
            "POST", f"/v2/checkout/orders/{checkout_id}/capture", {},
            request_id=f"capture-{checkout_id}", ok=(200, 201, 422))
        if status == 422:  # already captured (or not approved): read the order as it is
            _, order = await self._call("GET", f"/v2/checkout/orders/{checkout_id}")
        try:
            return paid_of_order(order, checkout_id)
        except WebhookRefused as exc:
            raise ProviderError(str(exc)) from None

    async def verify(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        if len(body) > MAX_BODY:
            raise WebhookRefused("the body is too large for a PayPal event", "body_too_large")
        sent = {h: headers.get(h, "") for h in HEADERS}
        if not all(sent.values()) or any(len(v) > 2048 for v in sent.values()):
            raise WebhookRefused("the PayPal transmission headers are missing",
                                 "bad_signature")
        try:
            at = datetime.fromisoformat(sent["paypal-transmission-time"].replace("Z", "+00:00"))
            age = time.time() - at.timestamp()
        except (ValueError, OverflowError, OSError):
            raise WebhookRefused("the transmission time is not a time", "bad_signature") \
                from None
        if not -self._s.tolerance_s <= age <= self._s.tolerance_s:
            raise WebhookRefused("the transmission is older than the tolerance (a replay?)",
                                 "bad_signature")
        try:
            data = json.loads(body)
        except ValueError:  # UnicodeDecodeError included
            raise WebhookRefused("the body is not JSON", "invalid_event") from None
        data = _obj(data, "body")
        try:
            _, answer = await self._call("POST", "/v1/notifications/verify-webhook-signature", {
                "auth_algo": sent["paypal-auth-algo"], "cert_url": sent["paypal-cert-url"],
                "transmission_id": sent["paypal-transmission-id"],
                "transmission_sig": sent["paypal-transmission-sig"],
                "transmission_time": sent["paypal-transmission-time"],
                "webhook_id": self._s.webhook_id, "webhook_event": data})
        except ProviderError as exc:
            err = WebhookRefused(f"could not verify the event with PayPal: {exc}",
                                 "verification_unavailable")
            raise err from None
        if answer.get("verification_status") != "SUCCESS":
            raise WebhookRefused("PayPal did not verify the event's signature", "bad_signature")
        return read_event(data)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

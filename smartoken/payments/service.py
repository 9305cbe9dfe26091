"""The payments runtime of one process: the configured providers, starting a checkout, and
applying a verified webhook (or PayPal's capture answer) to the wallet through
``ledger.apply_event``, then moving the reserver's view of the wallet like an admin adjustment
does (``AppState.reserver.apply_external``: the in-memory wallet, or the shared Redis balance
reloaded from the ledger; other replicas pick the transaction up through their change poller).
A negative adjustment (refund, dispute) is not held first: it is written whatever the balance,
and the reservers refuse further spend while the wallet is below what a request reserves.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from smartoken.errors import InvalidRequest
from smartoken.money import format_usd
from smartoken.payments import ledger
from smartoken.payments.contract import (
    MICRO_PER_CENT,
    Event,
    PaymentProvider,
    ProviderError,
    micro_to_cents,
)
from smartoken.payments.paypal_provider import PayPalProvider
from smartoken.payments.settings import PaymentSettings
from smartoken.state import AppState

log = logging.getLogger("smartoken.payments")


@dataclass(slots=True)
class Payments:
    settings: PaymentSettings
    providers: dict[str, PaymentProvider]

    def check_amount(self, micro: int) -> int:
        """The amount a user asked for, as cents, or InvalidRequest."""
        s = self.settings
        if micro % MICRO_PER_CENT:
            raise InvalidRequest("The amount must be in whole cents.", param="amount",
                                 code="invalid_amount")
        if not s.min_micro <= micro <= s.max_micro:
            raise InvalidRequest(f"The amount must be between ${format_usd(s.min_micro)} and "
                                 f"${format_usd(s.max_micro)}.", param="amount",
                                 code="amount_out_of_range")
        return micro_to_cents(micro)

    async def start(self, state: AppState, account_id: int, provider_name: str, micro: int,
                    base_url: str) -> str:
        """Create a pending payment and its checkout; returns where to send the browser.
        Nothing is credited here: only a verified event credits."""
        provider = self.providers.get(provider_name)
        if provider is None:
            raise InvalidRequest("That payment provider is not configured.", param="provider",
                                 code="provider_not_configured")
        cents = self.check_amount(micro)
        pid = await ledger.create_payment(state.engine, account_id, provider.name, micro)
        base = (state.settings.public_url or base_url).rstrip("/")
        done = f"{base}/console/wallet/topup/done?payment={pid}"
        try:
            checkout = await provider.create_checkout(
                pid, account_id, cents, done,
                f"{base}/console/wallet/topup/cancelled?payment={pid}")
        except ProviderError as exc:
            await ledger.set_checkout(state.engine, pid, None, failed=True)
            log.warning("checkout %s at %s failed: %s", pid, provider.name, exc)
            err = InvalidRequest(f"The payment provider could not start the checkout: {exc}",
                                 code="checkout_failed")
            err.status = 502
            raise err from None
        await ledger.set_checkout(state.engine, pid, checkout.checkout_id)
        log.info("checkout %s started at %s for account %d: %s USD", pid, provider.name,
                 account_id, format_usd(micro))
        return checkout.url

    async def apply(self, state: AppState, provider: str, event: Event,
                    event_id: str) -> ledger.Applied:
        applied = await ledger.apply_event(state.engine, provider, event, event_id,
                                           state.origin)
        if applied.txn_id is not None and applied.account_id is not None:
            await state.reserver.apply_external([(applied.txn_id, applied.account_id,
                                                  applied.amount_micro)])
        log.info("payment event %s (%s) at %s: %s %s", event_id[:80], type(event).__name__,
                 provider, applied.outcome, applied.payment_id or "")
        return applied

    async def webhook(self, state: AppState, provider: PaymentProvider, body: bytes,
                      headers: Mapping[str, str]) -> ledger.Applied:
        """Verify (WebhookRefused), then apply (EventRefused). An event type not acted on, or
        one naming no payment of ours, changes nothing and is acknowledged."""
        delivery = await provider.verify(body, headers)
        if delivery.event is None:
            return ledger.Applied("ignored")
        return await self.apply(state, provider.name, delivery.event, delivery.event_id)

    async def complete(self, state: AppState, payment: dict[str, object]) -> None:
        """The browser is back from an approved checkout: let the provider finish it (PayPal's
        capture); a verified completion credits through the same once-only path."""
        provider = self.providers.get(str(payment["provider"]))
        checkout_id = payment.get("checkout_id")
        if provider is None or not isinstance(checkout_id, str) or payment["status"] != "pending":
            return
        try:
            paid = await provider.complete(checkout_id)
        except ProviderError as exc:
            log.warning("completing %s at %s failed: %s", payment["id"], provider.name, exc)
            return
        if paid is not None:
            await self.apply(state, provider.name, paid, f"complete:{checkout_id}")


def build_providers(settings: PaymentSettings) -> dict[str, PaymentProvider]:
    out: dict[str, PaymentProvider] = {}
    if settings.stripe is not None:
        # imported here: the stripe library (with requests and httpx) holds ~8 MiB in every
        # worker that sells nothing through it (issue 16)
        from smartoken.payments.stripe_provider import StripeProvider

        out["stripe"] = StripeProvider(settings.stripe)
    if settings.paypal is not None:
        out["paypal"] = PayPalProvider(settings.paypal)
    return out


@contextlib.asynccontextmanager
async def open_payments(settings: PaymentSettings) -> AsyncIterator[Payments]:
    payments = Payments(settings, build_providers(settings))
    try:
        yield payments
    finally:
        for provider in payments.providers.values():
            with contextlib.suppress(Exception):
                await provider.aclose()

"""The payment-provider seam: what every provider (Stripe, PayPal) does, and the typed events a
verified webhook becomes.

A provider creates a checkout for an account and an exact amount (a redirect URL and the
provider's id of the payment), and turns a webhook delivery into events after verifying it. It
never touches the wallet: ``payments.ledger.apply_event`` turns each event into at most one
wallet transaction, whatever the retries, replays or concurrency.

Amounts cross the seam as integer cents of USD (what both providers speak); the wallet keeps
micro-USD: one cent is exactly 10,000 micro-USD. Any other currency is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from smartoken.money import MoneyError

CURRENCY = "usd"
MICRO_PER_CENT = 10_000


class WebhookRefused(ValueError):
    """A delivery that is not (verifiably) from the provider, or that cannot be read: 400 and
    nothing changes. ``code`` is a stable machine-readable reason."""

    def __init__(self, message: str, code: str = "invalid_webhook") -> None:
        super().__init__(message)
        self.code = code


class ProviderError(RuntimeError):
    """The provider's API refused or failed a call (create checkout, capture). The message is
    safe to show: it never carries a secret."""


def cents_to_micro(cents: int) -> int:
    if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
        raise MoneyError(f"not an amount of cents: {cents!r}")
    return cents * MICRO_PER_CENT


def micro_to_cents(micro: int) -> int:
    """Exact: an amount the provider cannot charge to the cent is refused, never rounded."""
    cents, rest = divmod(int(micro), MICRO_PER_CENT)
    if rest or micro < 0:
        raise MoneyError("the amount must be a whole number of cents")
    return cents


@dataclass(frozen=True, slots=True)
class PaymentRef:
    """How an event names the payment: our id (metadata / custom_id), the provider's id of the
    checkout (session / order), or the provider's id of the money movement (payment intent /
    capture). The first one known to the store wins."""

    payment_id: str | None = None
    checkout_id: str | None = None
    charge_id: str | None = None


@dataclass(frozen=True, slots=True)
class Checkout:
    """A checkout created at the provider: send the browser to ``url``."""

    url: str
    checkout_id: str


@dataclass(frozen=True, slots=True)
class Paid:
    """The payment completed: credit the wallet ``cents`` (once). ``charge_id`` names the money
    movement that later refunds and disputes refer to."""

    ref: PaymentRef
    cents: int
    currency: str
    charge_id: str | None = None
    account_hint: str | None = None  # the account id the provider echoes back, if any


@dataclass(frozen=True, slots=True)
class Refunded:
    """Money went back to the payer. ``cumulative``: ``cents`` is the total refunded so far
    (Stripe's amount_refunded), else this refund alone, named by ``refund_id`` (PayPal)."""

    ref: PaymentRef
    cents: int
    currency: str
    cumulative: bool
    refund_id: str = ""


@dataclass(frozen=True, slots=True)
class Disputed:
    """A chargeback was opened for ``cents``: taken from the wallet (once per dispute)."""

    ref: PaymentRef
    dispute_id: str
    cents: int
    currency: str


@dataclass(frozen=True, slots=True)
class DisputeWon:
    """A dispute closed in the merchant's favour: the disputed amount comes back (once)."""

    ref: PaymentRef
    dispute_id: str
    cents: int
    currency: str


@dataclass(frozen=True, slots=True)
class Expired:
    """The checkout ended unpaid (Stripe's ``checkout.session.expired``, or an asynchronous
    payment that failed): a pending payment becomes ``expired``; no money moves."""

    ref: PaymentRef


Event = Paid | Refunded | Disputed | DisputeWon | Expired


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified webhook delivery: the provider's event id and type, and what it means for the
    wallet (``None``: an event type this gateway does not act on)."""

    event_id: str
    event_type: str
    event: Event | None


class PaymentProvider(Protocol):
    name: str  # "stripe", "paypal": the store's provider column and the webhook path
    label: str  # shown to users
    checkout_origins: tuple[str, ...]  # where the browser goes: the console's form-action

    async def create_checkout(self, payment_id: str, account_id: int, cents: int,
                              success_url: str, cancel_url: str) -> Checkout:
        """Create a checkout for exactly ``cents`` USD. Raises ProviderError."""
        ...

    async def verify(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """Verify a webhook delivery and read it. Raises WebhookRefused."""
        ...

    async def complete(self, checkout_id: str) -> Paid | None:
        """The browser came back from an approved checkout: finish it where the provider
        needs a server call (PayPal's capture), returning the verified outcome; None when
        nothing is to be done here (Stripe: the webhook credits)."""
        ...

    async def aclose(self) -> None: ...

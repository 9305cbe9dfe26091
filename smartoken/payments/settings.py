"""Top-up settings: which payment providers are configured (secrets from the environment
only) and the amounts a user may pick (``payments:`` in the YAML file, or the environment).

Environment: ``SMARTOKEN_STRIPE_SECRET_KEY``, ``SMARTOKEN_STRIPE_WEBHOOK_SECRET``,
``SMARTOKEN_STRIPE_API_BASE`` (a stand-in of the API, for tests); ``SMARTOKEN_PAYPAL_CLIENT_ID``,
``SMARTOKEN_PAYPAL_CLIENT_SECRET``, ``SMARTOKEN_PAYPAL_WEBHOOK_ID``, ``SMARTOKEN_PAYPAL_API_BASE``
(default the live API; the sandbox is https://api-m.sandbox.paypal.com);
``SMARTOKEN_TOPUP_PRESETS`` ("5,10,25,50"), ``SMARTOKEN_TOPUP_MIN``, ``SMARTOKEN_TOPUP_MAX``.
The return pages use the gateway's ``public_url`` (``SMARTOKEN_PUBLIC_URL``), else the address
the browser used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from smartoken.money import MoneyError, parse_usd
from smartoken.payments.contract import MICRO_PER_CENT

STRIPE_API = "https://api.stripe.com"
PAYPAL_API = "https://api-m.paypal.com"
DEFAULT_PRESETS = ("5", "10", "25", "50")
WEBHOOK_TOLERANCE_S = 300


class PaymentConfigError(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


@dataclass(frozen=True, slots=True)
class StripeSettings:
    secret_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    api_base: str = STRIPE_API
    tolerance_s: int = WEBHOOK_TOLERANCE_S


@dataclass(frozen=True, slots=True)
class PayPalSettings:
    client_id: str
    client_secret: str = field(repr=False)
    webhook_id: str
    api_base: str = PAYPAL_API
    tolerance_s: int = WEBHOOK_TOLERANCE_S


@dataclass(frozen=True, slots=True)
class PaymentSettings:
    stripe: StripeSettings | None = None
    paypal: PayPalSettings | None = None
    presets: tuple[int, ...] = tuple(parse_usd(p) for p in DEFAULT_PRESETS)  # micro-USD
    min_micro: int = 5_000_000
    max_micro: int = 1_000_000_000

    @property
    def configured(self) -> bool:
        return self.stripe is not None or self.paypal is not None

    def secrets(self) -> list[str | None]:
        out: list[str | None] = []
        if self.stripe:
            out += [self.stripe.secret_key, self.stripe.webhook_secret]
        if self.paypal:
            out += [self.paypal.client_secret]
        return out


def _amount(value: Any, key: str) -> int:
    try:
        micro = parse_usd(value if not isinstance(value, float) else str(value))
    except MoneyError as exc:
        raise PaymentConfigError(key, str(exc)) from None
    if micro <= 0 or micro % MICRO_PER_CENT:
        raise PaymentConfigError(key, "must be a positive amount of whole cents")
    return micro


def _url(value: str, key: str) -> str:
    if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
        raise PaymentConfigError(key, "must be an http(s) URL")
    return value.rstrip("/")


def load(raw: Mapping[str, Any] | None, env: Mapping[str, str]) -> PaymentSettings:
    """``raw`` is the file's ``payments:`` mapping (presets, min, max)."""
    raw = dict(raw or {})
    for extra in set(raw) - {"presets", "min", "max"}:
        raise PaymentConfigError(f"payments.{extra}", "unknown option")
    presets_raw = raw.get("presets", env.get("SMARTOKEN_TOPUP_PRESETS") or list(DEFAULT_PRESETS))
    if isinstance(presets_raw, str):
        presets_raw = [p.strip() for p in presets_raw.split(",") if p.strip()]
    if not isinstance(presets_raw, list):
        raise PaymentConfigError("payments.presets", "must be a list of USD amounts")
    presets = tuple(sorted({_amount(p, "payments.presets") for p in presets_raw}))
    low = _amount(raw.get("min", env.get("SMARTOKEN_TOPUP_MIN", "5")), "payments.min")
    high = _amount(raw.get("max", env.get("SMARTOKEN_TOPUP_MAX", "1000")), "payments.max")
    if low > high:
        raise PaymentConfigError("payments.min", "must not exceed payments.max")
    if any(not low <= p <= high for p in presets):
        raise PaymentConfigError("payments.presets", "must lie within min..max")
    stripe = paypal = None
    if env.get("SMARTOKEN_STRIPE_SECRET_KEY"):
        if not env.get("SMARTOKEN_STRIPE_WEBHOOK_SECRET"):
            raise PaymentConfigError("SMARTOKEN_STRIPE_WEBHOOK_SECRET",
                                     "is required with SMARTOKEN_STRIPE_SECRET_KEY (without it "
                                     "no payment could ever be credited)")
        stripe = StripeSettings(
            env["SMARTOKEN_STRIPE_SECRET_KEY"], env["SMARTOKEN_STRIPE_WEBHOOK_SECRET"],
            _url(env.get("SMARTOKEN_STRIPE_API_BASE", STRIPE_API), "SMARTOKEN_STRIPE_API_BASE"))
    if env.get("SMARTOKEN_PAYPAL_CLIENT_ID"):
        for needed in ("SMARTOKEN_PAYPAL_CLIENT_SECRET", "SMARTOKEN_PAYPAL_WEBHOOK_ID"):
            if not env.get(needed):
                raise PaymentConfigError(needed, "is required with SMARTOKEN_PAYPAL_CLIENT_ID")
        paypal = PayPalSettings(
            env["SMARTOKEN_PAYPAL_CLIENT_ID"], env["SMARTOKEN_PAYPAL_CLIENT_SECRET"],
            env["SMARTOKEN_PAYPAL_WEBHOOK_ID"],
            _url(env.get("SMARTOKEN_PAYPAL_API_BASE", PAYPAL_API), "SMARTOKEN_PAYPAL_API_BASE"))
    return PaymentSettings(stripe, paypal, presets, low, high)

"""Exact money: integer micro-USD (1 USD = 1,000,000), never floats.

Prices are integer micro-USD per one million tokens, so "$0.60 / 1M tokens" is ``600_000``.
The cost of a request is the exact rational sum of its token counts times their prices,
rounded half-up once, to the micro-dollar. Every ledger row stores that integer, so sums
over the ledger are exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NewType

MicroUSD = NewType("MicroUSD", int)

MICRO_PER_USD = 1_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000


class MoneyError(ValueError):
    """A money amount that cannot be represented exactly."""


# A USD amount written as text is plain decimal notation: "12", "-0.5", "12.50". Exponents
# ("1e3"), "NaN", "Infinity", underscores and inner spaces are what Decimal accepts and a
# person typing an amount does not mean.
_PLAIN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def parse_usd(value: str | int | Decimal) -> MicroUSD:
    """Parse a USD amount ("0.60", 5, Decimal("1.25")) into exact micro-USD.

    Floats are refused: they cannot carry an exact amount. More than six decimals is an error
    rather than a silent rounding.
    """
    if isinstance(value, (bool, float)):
        raise MoneyError(f"USD amounts must be strings or integers, not {type(value).__name__}")
    if isinstance(value, str) and (len(value) > 40 or not _PLAIN.fullmatch(value)):
        raise MoneyError(f"not a USD amount in plain decimal notation: {value[:40]!r}")
    try:
        dec = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"not a USD amount: {value!r}") from exc
    if not dec.is_finite():
        raise MoneyError(f"not a USD amount: {value!r}")
    micro = dec * MICRO_PER_USD
    if micro != micro.to_integral_value():
        raise MoneyError(f"{value!r} has more precision than one micro-dollar")
    return MicroUSD(int(micro))


def format_usd(micro: int) -> str:
    """Render micro-USD as a plain decimal string with six places: 1234567 -> "1.234567"."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), MICRO_PER_USD)
    return f"{sign}{whole}.{frac:06d}"


def usd_decimal(micro: int) -> Decimal:
    return Decimal(micro).scaleb(-6)


@dataclass(frozen=True, slots=True)
class Price:
    """Micro-USD per 1M tokens.

    ``cached_input`` applies to prompt tokens read from the vendor's cache (DeepSeek's
    ``prompt_cache_hit_tokens``, Moonshot's ``cached_tokens``, OpenAI's
    ``prompt_tokens_details.cached_tokens``), ``cache_write`` to prompt tokens written into it
    (Anthropic's ``cache_creation_input_tokens``); either one missing means the input price.
    """

    input: int
    output: int
    cached_input: int | None = None
    cache_write: int | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0,
             cache_write_tokens: int = 0) -> MicroUSD:
        """Exact cost, rounded half-up once to the micro-dollar.

        ``cached_tokens`` and ``cache_write_tokens`` are part of ``prompt_tokens`` (OpenAI's
        convention: the prompt counts every input token however it is billed); each is capped
        at what the prompt holds. Reasoning tokens are part of ``completion_tokens`` and priced
        as output.
        """
        prompt = max(prompt_tokens, 0)
        cached = min(max(cached_tokens, 0), prompt)
        written = min(max(cache_write_tokens, 0), prompt - cached)
        cached_price = self.input if self.cached_input is None else self.cached_input
        write_price = self.input if self.cache_write is None else self.cache_write
        numerator = (
            (prompt - cached - written) * self.input
            + cached * cached_price
            + written * write_price
            + max(completion_tokens, 0) * self.output
        )
        return MicroUSD((numerator + TOKENS_PER_PRICE_UNIT // 2) // TOKENS_PER_PRICE_UNIT)

    def worst_case(self, prompt_tokens: int, completion_tokens: int) -> MicroUSD:
        """The most ``cost`` can return for these counts, whatever part of the prompt the
        vendor reports as cache reads or writes (a cache write may cost more than input)."""
        dearest = max(self.input, self.cached_input or 0, self.cache_write or 0)
        return Price(dearest, self.output).cost(prompt_tokens, completion_tokens)

"""Numbers, money and dates the locale's way (Babel's CLDR data, imported by the first call:
a gateway that only relays never loads Babel). Money stays exact: amounts are integer micro-USD
turned into a Decimal, never a float."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from smartoken.money import usd_decimal


def number(n: int | None, locale: str) -> str:
    from babel.numbers import format_decimal

    return "—" if n is None else format_decimal(int(n), locale=locale)


def money(micro: int, locale: str, places: int = 4) -> str:
    """``places`` decimals exactly (rounded half-up), with the locale's sign and grouping."""
    from babel.numbers import format_currency

    pattern = "¤#,##0." + "0" * places
    value = usd_decimal(int(micro)).quantize(Decimal(1).scaleb(-places), rounding="ROUND_HALF_UP")
    return format_currency(value, "USD", format=pattern, locale=locale, currency_digits=False)


def price(micro: int, locale: str) -> str:
    """A per-1M price: at least two decimals, as many as it has (up to six)."""
    from babel.numbers import format_currency

    pattern = "¤#,##0.00####"
    return format_currency(usd_decimal(int(micro)), "USD", format=pattern, locale=locale,
                           currency_digits=False)


def when(value: datetime | None, tz: ZoneInfo, locale: str, part: str = "datetime") -> str:
    """``part``: ``datetime``, ``date`` or ``time``, in the gateway's zone."""
    from babel.dates import format_date, format_datetime, format_time

    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(tz)
    if part == "date":
        return format_date(value, "medium", locale=locale)
    if part == "time":
        return format_time(value, "medium", tzinfo=tz, locale=locale)
    return format_datetime(value, "medium", tzinfo=tz, locale=locale)

"""Prices that depend on when a request starts: time-of-day windows in the vendor's time zone.

DeepSeek bills its peak hours (Beijing time, Monday to Friday 09:00-12:00 and 14:00-18:00,
statutory holidays excepted) at twice the off-peak price. A model's base price is the one that
applies outside every window; a ``PriceWindow`` names the local days and hours where another
price applies, in its own IANA time zone, so daylight-saving shifts and a gateway running in
another zone change nothing.

A request is billed by the instant it started (``price_at``): the reservation and the settlement
use that one snapshot, so a request that starts at 11:59:59 and ends after noon is billed at the
peak price, whole, and a price imported while it runs does not touch it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from smartoken.money import Price


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class PriceWindow:
    """``price`` applies on ``days`` (0 = Monday) from ``start`` to ``end`` local time in
    ``tz``, start included, end excluded; ``end <= start`` crosses midnight (the part after
    midnight belongs to the day the window started). ``except_dates`` are local dates on which
    the window does not open (holidays)."""

    tz: str
    days: frozenset[int]
    start: time
    end: time
    price: Price
    except_dates: frozenset[date] = frozenset()
    label: str = ""

    def covers(self, when: datetime) -> bool:
        local = when.astimezone(_zone(self.tz))
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            opened = local.date() if self.start <= clock < self.end else None
        elif clock >= self.start:
            opened = local.date()
        elif clock < self.end:
            opened = date.fromordinal(local.date().toordinal() - 1)
        else:
            opened = None
        return (opened is not None and opened.weekday() in self.days
                and opened not in self.except_dates)


def price_at(base: Price, windows: tuple[PriceWindow, ...], when: datetime) -> Price:
    """The price of a request that starts at ``when`` (an aware datetime): the first window
    that covers it, else ``base``."""
    for window in windows:
        if window.covers(when):
            return window.price
    return base

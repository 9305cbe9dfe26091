"""Budget windows: the day and month a request is charged to, in the configured time zone."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()


class Windows:
    """Maps an instant to its ("YYYY-MM-DD", "YYYY-MM") budget windows; cached per second."""

    def __init__(self, tz: ZoneInfo, clock: Clock = system_clock) -> None:
        self._tz = tz
        self.clock = clock
        self._cached_second = -1
        self._cached: tuple[str, str] = ("", "")

    def at(self, ts: float) -> tuple[str, str]:
        second = int(ts)
        if second != self._cached_second:
            local = datetime.fromtimestamp(second, self._tz)
            self._cached = (local.strftime("%Y-%m-%d"), local.strftime("%Y-%m"))
            self._cached_second = second
        return self._cached

    def now(self) -> tuple[float, str, str]:
        ts = self.clock()
        day, month = self.at(ts)
        return ts, day, month

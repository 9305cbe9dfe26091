"""Sign-in throttling: a brake on password guessing.

After ``per_name`` failed sign-ins for one account name, or ``per_address`` from one client
address, within ``window`` seconds, further attempts are refused (429, ``Retry-After``) without
checking the password, until the oldest failure leaves the window. Counts live in this process
(each replica brakes on its own) and are bounded in memory.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MAX_TRACKED = 10_000


class LoginThrottle:
    def __init__(self, per_name: int = 5, per_address: int = 20, window: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_name, self.per_address, self.window = per_name, per_address, window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str]:
        return "name:" + name.strip().lower(), "addr:" + address

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, name: str, address: str) -> float | None:
        """Seconds to wait before the next attempt, or None when one is allowed now."""
        now = self.clock()
        waits = []
        for key, limit in zip(self._keys(name, address), (self.per_name, self.per_address),
                              strict=True):
            q = self._recent(key, now)
            if len(q) >= limit:
                waits.append(q[-limit] + self.window - now)
        return max(waits) if waits else None

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        if len(self._failures) >= MAX_TRACKED:
            self._failures.clear()
        for key in self._keys(name, address):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, name: str) -> None:
        self._failures.pop(self._keys(name, "")[0], None)

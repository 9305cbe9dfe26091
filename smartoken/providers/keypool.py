"""A provider's vendor keys: several keys serve one provider, each with its own health.

Keys are drawn by smooth weighted round-robin (nginx's: deterministic, spreads a key of weight
2 as A B A, not A A B). A key the vendor refuses for reasons of its own (401/403: revoked or
wrong; ``quota``: its account is out of balance; 429: its rate limit) cools down alone while the
others serve; the adapter retries the same request on the next key before anything reaches the
client, since a refused request is not billed by the vendor. Errors that are about the upstream
rather than the key (5xx, timeouts) are left to the route's breaker. When every key is cooling
the one whose cooldown ends first is still tried (a revoked key may have been restored).

Health is per process (like route health without Redis); ``view`` is what the admin API shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Cooldowns by why the vendor refused the key, in seconds.
COOLDOWN_AUTH = 300.0
COOLDOWN_QUOTA = 300.0
COOLDOWN_RATE = 30.0
AUTH_STATUSES = frozenset({401, 403})


@dataclass(slots=True)
class KeyHealth:
    label: str
    weight: int
    current: int = 0  # smooth weighted round-robin state
    requests: int = 0
    failures: int = 0
    cooling_until: float = 0.0
    last_error: str | None = None
    last_error_kind: str | None = None


def key_label(index: int, key: str) -> str:
    """How a key is named in health views and logs: its position and last four characters."""
    return f"key {index + 1} (…{key[-4:]})" if len(key) >= 12 else f"key {index + 1}"


def is_key_error(status: int, kind: str) -> bool:
    """Whether an upstream refusal is about the key used (so another key may succeed)."""
    return status in AUTH_STATUSES or kind in ("quota", "rate_limited")


class KeyPool:
    def __init__(self, keys: Sequence[tuple[str, int]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = [k for k, _ in keys]
        self.health = [KeyHealth(key_label(i, k), max(1, w)) for i, (k, w) in enumerate(keys)]
        self._clock = clock

    def __len__(self) -> int:
        return len(self.keys)

    def order(self) -> list[int]:
        """Indices of the keys to try for one request: the round-robin pick first, then the
        other available keys by weight, then (only if none is available) the key whose
        cooldown ends first."""
        now = self._clock()
        ready = [i for i, h in enumerate(self.health) if h.cooling_until <= now]
        if not ready:
            return [min(range(len(self.health)), key=lambda i: self.health[i].cooling_until)]
        total = sum(self.health[i].weight for i in ready)
        for i in ready:
            self.health[i].current += self.health[i].weight
        first = max(ready, key=lambda i: self.health[i].current)
        self.health[first].current -= total
        rest = sorted((i for i in ready if i != first), key=lambda i: -self.health[i].weight)
        return [first, *rest]

    def ok(self, index: int) -> None:
        h = self.health[index]
        h.requests += 1
        h.cooling_until = 0.0

    def failed(self, index: int, status: int, kind: str, message: str,
               retry_after: float | None = None) -> None:
        h = self.health[index]
        h.requests += 1
        h.failures += 1
        h.last_error, h.last_error_kind = message[:300], kind
        if status in AUTH_STATUSES:
            cool = COOLDOWN_AUTH
        elif kind == "quota":
            cool = COOLDOWN_QUOTA
        else:
            cool = retry_after if retry_after is not None else COOLDOWN_RATE
        h.cooling_until = self._clock() + min(max(cool, 1.0), 3600.0)

    def view(self) -> list[dict[str, object]]:
        now = self._clock()
        return [{"key": h.label, "weight": h.weight, "requests": h.requests,
                 "failures": h.failures, "state": "cooling" if h.cooling_until > now else "ok",
                 "cooling_for_s": round(max(0.0, h.cooling_until - now), 1),
                 "last_error": h.last_error, "last_error_kind": h.last_error_kind}
                for h in self.health]

"""Per-route health: a circuit breaker with cooldown, half-open probe and Retry-After.

Pure state, no I/O: the relay reports each attempt's outcome, the router asks ``available``.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# Failures that will not heal by themselves soon: out of balance, a misconfigured upstream id.
LONG_COOLDOWN = frozenset({"quota", "config"})


@dataclass(slots=True)
class BreakerPolicy:
    consecutive_failures: int = 3
    failure_rate: float = 0.5  # over the window, once min_samples are in
    window: int = 20
    min_samples: int = 10
    cooldown: float = 30.0
    quota_cooldown: float = 600.0  # an out-of-balance upstream stays out long
    max_cooldown: float = 300.0


@dataclass(slots=True)
class RouteHealth:
    state: str = CLOSED
    consecutive: int = 0
    open_until: float = 0.0
    probing: bool = False
    opened: int = 0
    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=20))
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    ttfts: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    last_error: str | None = None
    successes: int = 0
    failures: int = 0

    def success_rate(self) -> float | None:
        return sum(self.outcomes) / len(self.outcomes) if self.outcomes else None

    @staticmethod
    def _p50(values: deque[float]) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    def view(self, now: float) -> dict[str, object]:
        return {
            "state": self.state,
            "cooldown_remaining_s": round(max(0.0, self.open_until - now), 3),
            "success_rate": self.success_rate(),
            "p50_latency_ms": self._p50(self.latencies),
            "p50_ttft_ms": self._p50(self.ttfts),
            "successes": self.successes,
            "failures": self.failures,
            "last_error": self.last_error,
        }


class HealthBoard:
    def __init__(self, policy: BreakerPolicy | None = None, clock=time.monotonic) -> None:
        self.policy = policy or BreakerPolicy()
        self.clock = clock
        self.routes: dict[str, RouteHealth] = {}

    def get(self, route_id: str) -> RouteHealth:
        h = self.routes.get(route_id)
        if h is None:
            h = self.routes[route_id] = RouteHealth(
                outcomes=deque(maxlen=self.policy.window)
            )
        return h

    def available(self, route_id: str) -> bool:
        h = self.routes.get(route_id)
        if h is None or h.state == CLOSED:
            return True
        now = self.clock()
        if h.state == OPEN and now >= h.open_until:
            h.state = HALF_OPEN
            h.probing = False
        if h.state == HALF_OPEN and not h.probing:
            h.probing = True  # exactly one probe request at a time
            return True
        return False

    def reopens_at(self, route_id: str) -> float:
        """When the route's breaker lets requests through again (on ``clock``; 0 if closed)."""
        h = self.routes.get(route_id)
        return 0.0 if h is None or h.state == CLOSED else h.open_until

    def success(self, route_id: str, latency_ms: float, ttft_ms: float | None = None) -> None:
        h = self.get(route_id)
        h.successes += 1
        h.outcomes.append(True)
        h.latencies.append(latency_ms)
        if ttft_ms is not None:
            h.ttfts.append(ttft_ms)
        h.consecutive = 0
        if h.state != CLOSED:
            h.state, h.probing, h.opened = CLOSED, False, 0

    def failure(self, route_id: str, error: str, *, kind: str = "server",
                retry_after: float | None = None) -> None:
        p = self.policy
        h = self.get(route_id)
        h.failures += 1
        h.outcomes.append(False)
        h.consecutive += 1
        h.last_error = error
        now = self.clock()
        rate_trips = len(h.outcomes) >= p.min_samples and \
            (1 - (h.success_rate() or 0)) >= p.failure_rate
        if kind in LONG_COOLDOWN:
            cooldown = p.quota_cooldown
        elif retry_after is not None:
            cooldown = retry_after
        elif h.state == HALF_OPEN or h.consecutive >= p.consecutive_failures or rate_trips:
            cooldown = min(p.cooldown * (2 ** h.opened), p.max_cooldown)
        else:
            return
        h.state, h.probing = OPEN, False
        h.opened += 1
        h.open_until = max(h.open_until, now + cooldown)

"""Scale-out options, read from the environment when the state is built (never at import).

    SMARTOKEN_REDIS_PREFIX      key prefix in Redis (default ``st:``); lets tenants share a Redis
    SMARTOKEN_REDIS_DOWN        ``closed`` (default): refuse budgeted requests with 503 while
                                Redis is unreachable; ``open``: keep serving on per-process
                                counters loaded from the ledger (may overspend by what each
                                replica lets through during the outage)
    SMARTOKEN_RESERVATION_TTL   seconds a reservation lives without its replica's heartbeat
                                (default 30); a killed replica's reservations expire after it
    SMARTOKEN_COUNTER_TTL       seconds a Redis counter lives before it is reloaded from the
                                ledger of record (default 300): the reconciliation bound
    SMARTOKEN_BREAKER_REFRESH   seconds between reads of the shared breaker state (default 1)
    SMARTOKEN_REDIS_POOL        Redis connections per process (default 128); a call waits for a
                                free one (cluster/redis_pool.py)
    SMARTOKEN_REDIS_WAIT        seconds a call waits for a free connection (default 10), then
                                503 ``budget_store_busy``
    SMARTOKEN_RESERVER          force ``memory``, ``sql`` or ``redis`` (default: chosen from
                                redis_url and the worker count, see cluster/setup.py)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    prefix: str = "st:"
    fail_open: bool = False
    reservation_ttl: float = 30.0
    counter_ttl: int = 300
    breaker_refresh: float = 1.0
    reserver: str | None = None
    redis_pool: int = 128
    redis_wait: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClusterOptions:
        env = os.environ if env is None else env
        down = env.get("SMARTOKEN_REDIS_DOWN", "closed").strip().lower()
        if down not in ("closed", "open"):
            raise ValueError(f"SMARTOKEN_REDIS_DOWN must be 'closed' or 'open', got {down!r}")
        forced = env.get("SMARTOKEN_RESERVER") or None
        if forced not in (None, "memory", "sql", "redis"):
            raise ValueError(f"SMARTOKEN_RESERVER must be memory, sql or redis, got {forced!r}")
        return cls(
            prefix=env.get("SMARTOKEN_REDIS_PREFIX", "st:"),
            fail_open=down == "open",
            reservation_ttl=max(1.0, float(env.get("SMARTOKEN_RESERVATION_TTL", "30"))),
            counter_ttl=max(1, int(env.get("SMARTOKEN_COUNTER_TTL", "300"))),
            breaker_refresh=max(0.1, float(env.get("SMARTOKEN_BREAKER_REFRESH", "1"))),
            reserver=forced,
            redis_pool=max(4, int(env.get("SMARTOKEN_REDIS_POOL", "128"))),
            redis_wait=max(0.1, float(env.get("SMARTOKEN_REDIS_WAIT", "10"))),
        )

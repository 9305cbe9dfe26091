"""The Redis connection of a gateway process: one bounded, blocking pool.

Every Redis call borrows a connection for one round trip (a Lua script runs in well under a
millisecond), so a few dozen connections serve thousands of requests in flight. The pool is
bounded (``SMARTOKEN_REDIS_POOL``, default 128 per process: Redis accepts 10,000 clients by
default) and a call that finds every connection in use *waits* for one, up to
``SMARTOKEN_REDIS_WAIT`` seconds (default 10), instead of failing at once (redis-py's default
pool raised "Too many connections" beyond 100, which the reserver took for "Redis is down": 301
of 400 concurrent budgeted requests got 503).

A wait that times out raises ``RedisBusy``: Redis answers, this process is overloaded. It is told
apart from an unreachable Redis (a refused or reset connection): busy is a 503 "retry", never a
reason to switch to the fail-open counters.
"""

from __future__ import annotations

from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis

DEFAULT_POOL = 128
DEFAULT_WAIT = 10.0
# What means Redis did not answer (the reservers and the shared limits fall back or refuse).
REDIS_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError,
                redis_errors.BusyLoadingError, OSError)


class RedisBusy(redis_errors.ConnectionError):
    """Every pooled connection stayed in use for the whole wait."""


class _Pool(BlockingConnectionPool):
    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)
        except redis_errors.ConnectionError as exc:
            if "No connection available" in str(exc):
                raise RedisBusy(f"all {self.max_connections} Redis connections stayed in use "
                                f"for {self.timeout} s") from exc
            raise


def connect(url: str, pool_size: int = DEFAULT_POOL, wait: float = DEFAULT_WAIT) -> Redis:
    pool = _Pool.from_url(url, max_connections=pool_size, timeout=wait, socket_timeout=5.0,
                          socket_connect_timeout=2.0, health_check_interval=10,
                          retry_on_timeout=False)
    return Redis(connection_pool=pool)

"""Which reserver and which shared layers a gateway process runs with.

    redis_url set             RedisReserver, breakers shared through Redis, change notices over
                              pub/sub (the database poller stays the fallback)
    no Redis, workers > 1     SqlReserver: reservations as rows, atomic in the database
    no Redis, one worker      MemoryReserver: in-process, atomic under asyncio (the default)

``SMARTOKEN_RESERVER`` forces a choice (bench, tests); forcing ``memory`` with several workers
is refused, as it would lose the no-overspend guarantee.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.budget.contract import Reserver
from smartoken.budget.reserver import MemoryReserver
from smartoken.budget.sql_reserver import SqlReserver
from smartoken.budget.windows import Windows
from smartoken.cluster.options import ClusterOptions
from smartoken.config import Settings
from smartoken.ledger.writer import LedgerHooks
from smartoken.routing.health import HealthBoard

# redis-py and what uses it are imported only when Redis is configured (issue 16: ~8 MiB of
# RSS per worker otherwise)
if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("smartoken.cluster")


@dataclass(slots=True)
class Cluster:
    mode: str  # memory | sql | redis
    options: ClusterOptions
    reserver: Reserver
    health: HealthBoard
    redis: Redis | None = None
    hooks: LedgerHooks | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, on_change: Callable[[str], None]) -> None:
        """Start the shared layers' background tasks; ``on_change`` gets change notices."""
        if self.redis is None:
            return
        from smartoken.cluster import bus
        from smartoken.routing.shared_health import SharedHealthBoard

        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(
            bus.listen(self.redis, self.options.prefix, on_change), name="change-listener"))
        if isinstance(self.health, SharedHealthBoard):
            self.tasks.append(loop.create_task(self.health.run(), name="shared-breakers"))

    async def announce(self, what: str = "keys") -> None:
        """Tell the other replicas that configuration changed (no-op without Redis)."""
        if self.redis is not None:
            from smartoken.cluster import bus

            await bus.announce(self.redis, self.options.prefix, what)


def choose_mode(settings: Settings, options: ClusterOptions) -> str:
    if options.reserver is not None:
        if options.reserver == "redis" and not settings.redis_url:
            raise ValueError("SMARTOKEN_RESERVER=redis needs redis_url")
        if options.reserver == "memory" and settings.workers > 1:
            raise ValueError("the memory reserver cannot guard budgets across several workers")
        return options.reserver
    if settings.redis_url:
        return "redis"
    return "sql" if settings.workers > 1 else "memory"


@contextlib.asynccontextmanager
async def scaleout(settings: Settings, engine: AsyncEngine, windows: Windows,
                   origin: str, memory_ttl: float,
                   env: Mapping[str, str] | None = None) -> AsyncIterator[Cluster]:
    options = ClusterOptions.from_env(env)
    mode = choose_mode(settings, options)
    redis: Redis | None = None
    reserver: Reserver
    health: HealthBoard
    if settings.redis_url:
        from smartoken.cluster.redis_pool import connect
        from smartoken.routing.shared_health import SharedHealthBoard

        redis = connect(settings.redis_url, options.redis_pool, options.redis_wait)
        health = SharedHealthBoard(redis, options.prefix, options.breaker_refresh,
                                   policy=settings.breaker)
    else:
        health = HealthBoard(settings.breaker)
    if mode == "redis":
        from smartoken.budget.redis_reserver import RedisReserver

        assert redis is not None
        reserver = RedisReserver(engine, windows, redis, options, origin)
    elif mode == "sql":
        reserver = SqlReserver(engine, windows, origin, options.reservation_ttl)
    else:
        reserver = MemoryReserver(engine, windows, memory_ttl)
    shared = mode in ("sql", "redis")
    hooks: LedgerHooks | None = reserver if shared else None  # type: ignore[assignment]
    cluster = Cluster(mode, options, reserver, health, redis, hooks)
    log.info("budget reservations: %s", mode)
    try:
        await reserver.start()
        yield cluster
    finally:
        for task in cluster.tasks:
            task.cancel()
        await asyncio.gather(*cluster.tasks, return_exceptions=True)
        await reserver.close()
        if redis is not None:
            await redis.aclose()

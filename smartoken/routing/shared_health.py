"""Circuit-breaker state shared across replicas through Redis: a thin layer over HealthBoard.

When a replica opens a route's breaker it writes the route's open-until instant (wall clock)
to the Redis hash ``P:breakers``; a half-open probe that succeeds removes it. Every replica
reads the hash every ``refresh`` seconds into a local map, and ``available`` also refuses a
route another replica has opened. So a failing upstream is tripped by the first replica that
sees it, and the others stop sending to it within ``refresh`` seconds (1 s by default). Redis
down: each replica keeps its own breakers, as with one process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis.asyncio import Redis

from smartoken.routing.health import OPEN, HealthBoard

log = logging.getLogger("smartoken.routing")


class SharedHealthBoard(HealthBoard):
    def __init__(self, redis: Redis, prefix: str, refresh: float = 1.0,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self._redis = redis
        self._key = f"{prefix}breakers"
        self._refresh = refresh
        self._shared: dict[str, float] = {}  # route id -> open until (epoch seconds)
        self._pending: set[asyncio.Task[Any]] = set()

    def available(self, route_id: str) -> bool:
        until = self._shared.get(route_id)
        if until is not None and time.time() < until:
            h = self.routes.get(route_id)
            if h is None or h.state != OPEN:  # opened elsewhere; our own probe logic otherwise
                return False
        return super().available(route_id)

    def reopens_at(self, route_id: str) -> float:
        local = super().reopens_at(route_id)
        until = self._shared.get(route_id)
        if until is None:
            return local
        return max(local, self.clock() + (until - time.time()))

    def failure(self, route_id: str, error: str, *, kind: str = "server",
                retry_after: float | None = None) -> None:
        before = self.routes[route_id].open_until if route_id in self.routes else 0.0
        super().failure(route_id, error, kind=kind, retry_after=retry_after)
        h = self.routes[route_id]
        if h.state == OPEN and h.open_until > before:
            until = time.time() + (h.open_until - self.clock())
            self._shared[route_id] = max(self._shared.get(route_id, 0.0), until)
            self._spawn(self._redis.hset(self._key, route_id, repr(until)))

    def success(self, route_id: str, latency_ms: float, ttft_ms: float | None = None) -> None:
        was_open = route_id in self.routes and self.routes[route_id].state != "closed"
        super().success(route_id, latency_ms, ttft_ms)
        if was_open or route_id in self._shared:
            self._shared.pop(route_id, None)
            self._spawn(self._redis.hdel(self._key, route_id))

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (unit use): local state only
            coro.close()
            return
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("shared breaker write failed: %s", task.exception())

    async def run(self) -> None:
        """Refresh the shared map until cancelled."""
        while True:
            try:
                raw = await self._redis.hgetall(self._key)
                now = time.time()
                shared = {}
                for k, v in raw.items():
                    route = k.decode() if isinstance(k, bytes) else str(k)
                    until = float(v)
                    if until > now:
                        shared[route] = until
                    else:
                        await self._redis.hdel(self._key, route)
                self._shared = shared
            except Exception:
                log.debug("shared breaker refresh failed", exc_info=True)
            await asyncio.sleep(self._refresh)

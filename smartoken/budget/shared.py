"""What the two shared reservers (SQL, Redis) have in common: settlement runs in a tracked task
that the ledger batch waits for before it writes, so a batch never commits a cost whose
counters have not been moved yet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import exc as sa_errors

from smartoken.budget.reserver import Reservation
from smartoken.errors import BudgetStoreUnavailable
from smartoken.ledger.records import UsageRecord

log = logging.getLogger("smartoken.budget")
# The database cannot be reached (refused, reset, timed out, too many clients, pool exhausted):
# a budgeted request gets a 503, not a 500.
DB_DOWN = (sa_errors.DBAPIError, sa_errors.TimeoutError, OSError, TimeoutError)


def store_down(exc: BaseException) -> BudgetStoreUnavailable:
    log.warning("database unreachable, refusing budgeted request: %s",
                str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
    return BudgetStoreUnavailable(
        "The database that holds the budget counters is unreachable, so this request's budget "
        "cannot be checked; it was not sent upstream. Retry shortly.")


class SharedReserver:
    def __init__(self) -> None:
        self._settles: dict[str, asyncio.Task[None]] = {}
        self.in_flight = 0

    def _track(self, rid: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._settles[rid] = task
        task.add_done_callback(lambda t: self._settles.pop(rid, None)
                               if self._settles.get(rid) is t else None)

    def settle(self, res: Reservation, actual: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self, res: Reservation) -> None:
        self.settle(res, 0)

    async def apply_external(self, txns: list[tuple[int, int, int]]) -> None:
        """Shared counters read credits from the database."""

    def forget_key(self, key_id: int) -> None:
        pass

    async def before_write(self, batch: list[UsageRecord]) -> None:
        waits = [t for rec in batch if (t := self._settles.get(rec.id)) is not None]
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)

    async def _drain_settles(self) -> None:
        if self._settles:
            await asyncio.gather(*self._settles.values(), return_exceptions=True)

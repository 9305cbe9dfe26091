"""The no-overspend guarantee for several workers on one host without Redis: reservations are
rows in the ``reservations`` table, checked and inserted in one database transaction.

``reserve`` opens a transaction whose first statement is a no-op UPDATE of the account's wallet
row: it takes the row lock on PostgreSQL and the write lock on SQLite, so every reservation
and every ledger batch of the account are serialised. Inside it reads the wallet balance, the
sum of the account's reservations, and, for a key with budgets, the key's recorded spend plus
its reservations in the day and month; then it inserts the reservation or refuses.

``settle`` (in a task the ledger batch waits for) turns the row into the actual cost; the
ledger batch deletes the rows of its requests in the same transaction that inserts their usage
records and debits the wallet (``in_transaction``), so a settled cost is counted exactly once:
as a reservation row before the batch commits, in the ledger after. Rows carry a deadline kept
alive by their worker's heartbeat; a killed worker's rows expire and are deleted by any
worker's sweep after ``reservation_ttl`` seconds.

Speed cost: one write transaction per request to reserve and one to settle, plus the batch
delete: measured in bench/scaleout.py and reported in the README ("Scale-out").
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from smartoken.auth.keys import KeyContext
from smartoken.budget.reserver import Reservation
from smartoken.budget.windows import Windows
from smartoken.errors import BudgetExceeded, InsufficientBalance
from smartoken.ledger.records import UsageRecord
from smartoken.money import format_usd
from smartoken.store.schema import reservations, usage_records, wallets

log = logging.getLogger("smartoken.budget")


def _sum(column, *where):  # type: ignore[no-untyped-def]
    return select(func.coalesce(func.sum(column), 0)).where(*where).scalar_subquery()


class SqlReserver:
    def __init__(self, engine: AsyncEngine, windows: Windows, origin: str,
                 reservation_ttl: float = 30.0) -> None:
        self._engine = engine
        self.windows = windows
        self._origin = origin[:40]
        self._ttl = reservation_ttl
        self._settles: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.in_flight = 0

    async def reserve(self, key: KeyContext, amount: int,
                      request_id: str = "") -> Reservation:
        ts, day, month = self.windows.now()
        rid = request_id or "res_" + secrets.token_hex(12)
        r = reservations.c
        async with self._engine.begin() as conn:
            balance = await conn.scalar(
                update(wallets).where(wallets.c.account_id == key.account_id)
                .values(balance_micro=wallets.c.balance_micro)
                .returning(wallets.c.balance_micro))
            held = await conn.scalar(select(_sum(r.amount_micro,
                                                 r.account_id == key.account_id)))
            available = int(balance or 0) - int(held or 0)
            if amount > available:
                raise InsufficientBalance(
                    f"Insufficient wallet balance: this request may cost up to "
                    f"${format_usd(amount)} and ${format_usd(max(available, 0))} is available. "
                    "Credit the wallet or lower max_tokens.")
            for window, limit, label, ucol, rcol in (
                    (day, key.daily_budget, "daily", usage_records.c.day, r.day),
                    (month, key.monthly_budget, "monthly", usage_records.c.month, r.month)):
                if limit is None:
                    continue
                row = (await conn.execute(select(
                    _sum(usage_records.c.cost_micro, usage_records.c.key_id == key.key_id,
                         ucol == window),
                    _sum(r.amount_micro, r.key_id == key.key_id, rcol == window)))).one()
                used = int(row[0]) + int(row[1])
                if used + amount > limit:
                    raise BudgetExceeded(
                        f"The key's {label} budget of ${format_usd(limit)} would be exceeded: "
                        f"${format_usd(used)} is spent or reserved in {window} and this request "
                        f"may cost up to ${format_usd(amount)}.", param=f"{label}_budget")
            await conn.execute(insert(reservations).values(
                id=rid, account_id=key.account_id, key_id=key.key_id, day=day, month=month,
                amount_micro=amount, settled=False, deadline=time.time() + self._ttl,
                holder=self._origin))
        self.in_flight += 1
        return Reservation(key.key_id, key.account_id, amount, day, month, ts, id=rid)

    def settle(self, res: Reservation, actual: int) -> None:
        """Replace the reservation by the actual cost (0 releases it). Idempotent, never
        awaits: the row is updated in a task the ledger batch waits for."""
        if res.done:
            return
        res.done = True
        self.in_flight -= 1
        task = asyncio.get_running_loop().create_task(self._settle_row(res.id, actual))
        self._settles[res.id] = task
        task.add_done_callback(lambda _t: self._settles.pop(res.id, None)
                               if self._settles.get(res.id) is _t else None)

    async def _settle_row(self, rid: str, actual: int) -> None:
        r = reservations.c
        for attempt in range(5):
            try:
                async with self._engine.begin() as conn:
                    if actual:
                        await conn.execute(update(reservations).where(r.id == rid)
                                           .values(amount_micro=actual, settled=True))
                    else:
                        await conn.execute(delete(reservations).where(r.id == rid))
                return
            except Exception:
                log.warning("settling reservation %s failed (attempt %d)", rid, attempt + 1,
                            exc_info=True)
                await asyncio.sleep(0.2 * (attempt + 1))
        # The row keeps the worst case until the ledger batch deletes it: conservative.

    def release(self, res: Reservation) -> None:
        self.settle(res, 0)

    def apply_external(self, txns: list[tuple[int, int, int]]) -> None:
        """Credits are read from the wallet row at every reservation: nothing to do."""

    def forget_key(self, key_id: int) -> None:
        pass

    def snapshot(self, account_id: int) -> tuple[int, int] | None:
        return None

    # -------------------------------------------------------------- ledger hooks

    async def before_write(self, batch: list[UsageRecord]) -> None:
        waits = [t for rec in batch if (t := self._settles.get(rec.id)) is not None]
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)

    async def in_transaction(self, conn: AsyncConnection, batch: list[UsageRecord]) -> None:
        ids = [rec.id for rec in batch]
        for i in range(0, len(ids), 500):
            await conn.execute(delete(reservations).where(reservations.c.id.in_(ids[i:i + 500])))

    async def after_write(self, batch: list[UsageRecord], versions: dict[int, int]) -> None:
        pass

    # -------------------------------------------------------------- background

    async def start(self) -> None:
        self._tasks = [asyncio.get_running_loop().create_task(self._heartbeat(),
                                                              name="reservations")]

    async def _heartbeat(self) -> None:
        """Keep this worker's rows alive; delete rows whose worker stopped beating."""
        r = reservations.c
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                now = time.time()
                async with self._engine.begin() as conn:
                    await conn.execute(update(reservations).where(r.holder == self._origin)
                                       .values(deadline=now + self._ttl))
                    await conn.execute(delete(reservations).where(r.deadline < now))
            except Exception:
                log.warning("reservation heartbeat failed", exc_info=True)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._settles:
            await asyncio.gather(*self._settles.values(), return_exceptions=True)

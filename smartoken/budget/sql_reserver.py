"""The no-overspend guarantee for several workers on one host without Redis: reservations are
rows in the ``reservations`` table, checked and inserted in one database transaction.

``reserve`` first locks the account's wallet row (SELECT ... FOR UPDATE in the server-side
function ``st_reserve`` on PostgreSQL, created by migration 0006; a no-op UPDATE that takes the
write lock on SQLite), so every reservation and every ledger batch of the account are
serialised. Then it reads the sum of the account's reservations and, for the key, its running
spend (``key_spend``) and reservations in the day and month, and inserts the reservation or
refuses.

``settle`` (in a task the ledger batch waits for) turns the row into the actual cost; the
ledger batch deletes the rows of its requests in the same transaction that inserts their usage
records, debits the wallet and adds to ``key_spend`` (``in_transaction``), so a settled cost is
counted exactly once: as a reservation row before the batch commits, in the ledger after. Rows
carry a deadline kept alive by their worker's heartbeat; a killed worker's rows expire and are
deleted by any worker's sweep after ``reservation_ttl`` seconds.

Speed cost: two write transactions per request (reserve, settle), serialised per account by the
wallet row lock, plus the batch delete: measured in bench/scaleout.py and reported in the
docs/scale-out.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from smartoken.auth.keys import KeyContext
from smartoken.budget.reserver import Reservation
from smartoken.budget.shared import DB_DOWN, SharedReserver, store_down
from smartoken.budget.windows import Windows
from smartoken.errors import BudgetExceeded, InsufficientBalance
from smartoken.ledger.records import UsageRecord
from smartoken.money import format_usd
from smartoken.store.schema import key_spend, reservations, usage_records, wallets

log = logging.getLogger("smartoken.budget")
HOLD = "hold"  # the window of a hold's row (key 0): never a real day or month


def _no_balance(amount: int, available: int) -> InsufficientBalance:
    return InsufficientBalance(
        f"Insufficient wallet balance: this request may cost up to ${format_usd(amount)} and "
        f"${format_usd(max(available, 0))} is available. Credit the wallet or lower max_tokens.")


def _over_budget(label: str, limit: int, used: int, window: str, amount: int) -> BudgetExceeded:
    return BudgetExceeded(
        f"The key's {label} budget of ${format_usd(limit)} would be exceeded: "
        f"${format_usd(used)} is spent or reserved in {window} and this request may cost up to "
        f"${format_usd(amount)}.", param=f"{label}_budget")


def _sum(column, *where):  # type: ignore[no-untyped-def]
    return select(func.coalesce(func.sum(column), 0)).where(*where).scalar_subquery()


class SqlReserver(SharedReserver):
    def __init__(self, engine: AsyncEngine, windows: Windows, origin: str,
                 reservation_ttl: float = 30.0) -> None:
        super().__init__()
        self._engine = engine
        # PostgreSQL: reservation rows go through their own pool, whose sessions commit without
        # waiting for the WAL flush (reservations are transient; a database crash loses only
        # in-flight holds, never a debit; commits are visible at once all the same).
        self._fast: AsyncEngine | None = None
        if engine.dialect.name == "postgresql":
            self._fast = create_async_engine(
                engine.url, pool_size=10, max_overflow=10, pool_pre_ping=True,
                isolation_level="AUTOCOMMIT",
                connect_args={"server_settings": {"synchronous_commit": "off"},
                              "timeout": 5})  # connecting: an unreachable host fails fast
        self.windows = windows
        self._origin = origin[:40]
        self._ttl = reservation_ttl
        self._tasks: list[asyncio.Task[None]] = []
        self._holds: dict[tuple[int, int], list[str]] = defaultdict(list)

    async def reserve(self, key: KeyContext, amount: int,
                      request_id: str = "") -> Reservation:
        ts, day, month = self.windows.now()
        rid = request_id or "res_" + secrets.token_hex(12)
        try:
            if self._fast is not None:
                await self._reserve_pg(key, amount, rid, day, month)
            else:
                await self._reserve_txn(key, amount, rid, day, month)
        except IntegrityError:
            raise
        except DB_DOWN as exc:
            raise store_down(exc) from None
        self.in_flight += 1
        return Reservation(key.key_id, key.account_id, amount, day, month, ts, id=rid)

    async def _reserve_pg(self, key: KeyContext, amount: int, rid: str, day: str,
                          month: str) -> None:
        """PostgreSQL: one call of ``st_reserve`` (migration 0006), committed by itself."""
        assert self._fast is not None
        async with self._fast.connect() as conn:
            verdict, value = (await conn.execute(
                text("SELECT * FROM st_reserve(:id, :a, :k, :d, :m, :amount, :dl, :ml, "
                     ":deadline, :holder)"),
                {"id": rid, "a": key.account_id, "k": key.key_id, "d": day, "m": month,
                 "amount": amount, "dl": key.daily_budget, "ml": key.monthly_budget,
                 "deadline": time.time() + self._ttl, "holder": self._origin})).one()
        if verdict == "wallet":
            raise _no_balance(amount, int(value))
        if verdict in ("daily", "monthly"):
            limit = key.daily_budget if verdict == "daily" else key.monthly_budget
            raise _over_budget(verdict, limit or 0, int(value), day if verdict == "daily"
                               else month, amount)

    async def _reserve_txn(self, key: KeyContext, amount: int, rid: str, day: str,
                           month: str) -> None:
        """SQLite (or any other database): the same steps as one client transaction."""
        r, ks = reservations.c, key_spend.c
        windows = [(day, key.daily_budget, "daily", r.day),
                   (month, key.monthly_budget, "monthly", r.month)]
        async with self._begin() as conn:
            # The lock: every reservation and ledger batch of this account queues here.
            balance = await conn.scalar(
                update(wallets).where(wallets.c.account_id == key.account_id)
                .values(balance_micro=wallets.c.balance_micro)
                .returning(wallets.c.balance_micro))
            cols = [_sum(r.amount_micro, r.account_id == key.account_id)]
            for window, _limit, _label, rcol in windows:
                cols.append(select(ks.spent_micro).where(ks.key_id == key.key_id,
                                                         ks.period == window)
                            .scalar_subquery())
                cols.append(_sum(r.amount_micro, r.key_id == key.key_id, rcol == window))
            row = (await conn.execute(select(*cols))).one()
            available = int(balance or 0) - int(row[0])
            if amount > available:
                raise _no_balance(amount, available)
            for i, (window, limit, label, _rcol) in enumerate(windows):
                if limit is None:
                    continue
                spent = row[1 + 2 * i]
                if spent is None:
                    spent = await self._start_window(conn, key.key_id, window)
                used = int(spent) + int(row[2 + 2 * i])
                if used + amount > limit:
                    raise _over_budget(label, limit, used, window, amount)
            await conn.execute(insert(reservations).values(
                id=rid, account_id=key.account_id, key_id=key.key_id, day=day, month=month,
                amount_micro=amount, settled=False, deadline=time.time() + self._ttl,
                holder=self._origin))

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for reservation rows (on PostgreSQL, through the no-flush pool)."""
        async with (self._fast or self._engine).begin() as conn:
            yield conn

    @staticmethod
    async def _start_window(conn: AsyncConnection, key_id: int, window: str) -> int:
        """First use of a key's window: its running spend starts from the usage records.
        Under the wallet lock, a ledger batch of this account is either wholly visible (its
        records are summed) or not yet begun (it will add itself to the row)."""
        column = usage_records.c.day if len(window) == 10 else usage_records.c.month
        spent = int(await conn.scalar(select(_sum(
            usage_records.c.cost_micro, usage_records.c.key_id == key_id, column == window)))
            or 0)
        await conn.execute(insert(key_spend).values(key_id=key_id, period=window,
                                                    spent_micro=spent))
        return spent

    def settle(self, res: Reservation, actual: int) -> int:
        """Replace the reservation by the actual cost (0 releases it) and return what was
        charged: the actual cost in full, also above the reservation (the upstream bills it;
        the budget may go over by this one request, then refuses). Idempotent, never
        awaits: the row is updated in a task the ledger batch waits for."""
        if res.done:
            return 0
        res.done = True
        self.in_flight -= 1
        self._track(res.id, self._settle_row(res.id, actual))
        return actual

    async def _settle_row(self, rid: str, actual: int) -> None:
        r = reservations.c
        for attempt in range(5):
            try:
                async with self._begin() as conn:
                    if actual:
                        await conn.execute(update(reservations).where(r.id == rid)
                                           .values(amount_micro=actual, settled=True))
                    else:
                        await conn.execute(delete(reservations).where(r.id == rid))
                return
            except DB_DOWN as exc:
                log.warning("settling reservation %s failed (attempt %d): %s", rid, attempt + 1,
                            type(exc).__name__)
                await asyncio.sleep(0.2 * (attempt + 1))
        # The row keeps the worst case until the ledger batch deletes it: conservative.

    # -------------------------------------------------------------- holds and views

    async def hold(self, account_id: int, amount: int) -> bool:
        """A reservation row with no key (key 0, window ``hold``), checked under the wallet
        lock like any reservation; kept alive by the heartbeat until ``unhold``."""
        try:
            return await self._hold(account_id, amount)
        except IntegrityError:
            raise
        except DB_DOWN as exc:
            raise store_down(exc) from None

    async def _hold(self, account_id: int, amount: int) -> bool:
        rid = "hold_" + secrets.token_hex(12)
        r = reservations.c
        async with self._engine.begin() as conn:  # a real transaction on every dialect
            balance = await conn.scalar(
                update(wallets).where(wallets.c.account_id == account_id)
                .values(balance_micro=wallets.c.balance_micro)
                .returning(wallets.c.balance_micro))
            reserved = await conn.scalar(select(_sum(r.amount_micro,
                                                     r.account_id == account_id)))
            if balance is None or amount > int(balance) - int(reserved or 0):
                return False
            await conn.execute(insert(reservations).values(
                id=rid, account_id=account_id, key_id=0, day=HOLD, month=HOLD,
                amount_micro=amount, settled=False, deadline=time.time() + self._ttl,
                holder=self._origin))
        self._holds[(account_id, amount)].append(rid)
        return True

    async def unhold(self, account_id: int, amount: int) -> None:
        ids = self._holds.get((account_id, amount))
        if not ids:
            return
        rid = ids.pop()
        if not ids:
            del self._holds[(account_id, amount)]
        async with self._engine.begin() as conn:
            await conn.execute(delete(reservations).where(reservations.c.id == rid))

    async def snapshot(self, account_id: int) -> tuple[int, int] | None:
        r = reservations.c
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(
                select(wallets.c.balance_micro).where(wallets.c.account_id == account_id)
                .scalar_subquery(),
                _sum(r.amount_micro, r.account_id == account_id)))).one()
        return None if row[0] is None else (int(row[0]), int(row[1]))

    async def key_snapshot(self, key_id: int, day: str,
                           month: str) -> tuple[int, int, int] | None:
        r, ks = reservations.c, key_spend.c
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(
                *(select(ks.spent_micro).where(ks.key_id == key_id, ks.period == w)
                  .scalar_subquery() for w in (day, month)),
                _sum(r.amount_micro, r.key_id == key_id, r.day == day)))).one()
        if row[0] is None or row[1] is None:  # a window not started yet: the ledger has it
            return None
        return int(row[0]), int(row[1]), int(row[2])

    # -------------------------------------------------------------- ledger hooks

    async def in_transaction(self, conn: AsyncConnection, batch: list[UsageRecord]) -> None:
        """In the batch's transaction, after it debited the wallets (and so holds their locks):
        move the keys' running spend, and delete the batch's reservations."""
        spend: dict[tuple[int, str], int] = defaultdict(int)
        for rec in batch:
            if rec.cost_micro:
                spend[(rec.key_id, rec.day)] += rec.cost_micro
                spend[(rec.key_id, rec.month)] += rec.cost_micro
        ks = key_spend.c
        for (key_id, window), amount in sorted(spend.items()):
            await conn.execute(update(key_spend).where(ks.key_id == key_id, ks.period == window)
                               .values(spent_micro=ks.spent_micro + amount))
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
            await asyncio.sleep(self._ttl / 4)
            try:
                now = time.time()
                async with self._begin() as conn:
                    await conn.execute(update(reservations).where(r.holder == self._origin)
                                       .values(deadline=now + self._ttl))
                    await conn.execute(delete(reservations).where(r.deadline < now))
            except DB_DOWN as exc:
                log.warning("reservation heartbeat failed: %s", type(exc).__name__)
            except Exception:
                log.warning("reservation heartbeat failed", exc_info=True)

    async def release_holder(self, origin: str) -> None:
        """A worker on this host died (its crash journal's lock is free) and its journaled
        records are written, which deleted their settled rows: what it still holds are the
        reservations of requests it never finished. Release them now, not at their deadline."""
        async with self._begin() as conn:
            gone = await conn.execute(delete(reservations)
                                      .where(reservations.c.holder == origin[:40]))
        if gone.rowcount:
            log.warning("released %d reservations of %s, a process that died", gone.rowcount,
                        origin)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._settles:
            await asyncio.gather(*self._settles.values(), return_exceptions=True)
        if self._fast is not None:
            await self._fast.dispose()

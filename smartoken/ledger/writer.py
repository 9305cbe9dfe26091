"""The batched ledger writer: usage records and wallet debits, off the hot path.

``record()`` is synchronous and never awaits, so billing cannot be skipped by a cancelled
request handler. A tracked background task flushes the queue every ``interval`` seconds (or at
once when a batch fills) in one database transaction per batch: the usage rows, one debit
transaction per billed request, and the wallet balances moved by the same sums. A failed flush
keeps the batch and retries; ``close()`` drains everything before shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from operator import attrgetter
from pathlib import Path
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from smartoken.ledger import journal
from smartoken.ledger.journal import Journal
from smartoken.ledger.records import ROW_FIELDS, UsageRecord
from smartoken.store.bulk import BulkInsert
from smartoken.store.repo import now
from smartoken.store.schema import usage_records, wallet_transactions, wallets

log = logging.getLogger("smartoken.ledger")
# A record's values in the table's column order, the order BulkInsert takes them in.
_USAGE_COLUMNS = [c.name for c in usage_records.c if c.name in ROW_FIELDS]
_usage_values = attrgetter(*_USAGE_COLUMNS)
USAGE_ROWS = BulkInsert(usage_records, _USAGE_COLUMNS)
DEBIT_ROWS = BulkInsert(wallet_transactions, ("account_id", "kind", "amount_micro", "request_id",
                                              "actor", "reason", "origin", "created_at"))


class LedgerHooks(Protocol):
    """What a shared reserver needs around each batch (see budget/redis_reserver.py and
    budget/sql_reserver.py): wait for the batch's settlements before writing, act inside the
    batch's transaction, and learn the wallet versions the batch committed."""

    async def before_write(self, batch: list[UsageRecord]) -> None: ...

    async def in_transaction(self, conn: AsyncConnection, batch: list[UsageRecord]) -> None: ...

    async def after_write(self, batch: list[UsageRecord], versions: dict[int, int]) -> None: ...


class LedgerWriter:
    def __init__(
        self, engine: AsyncEngine, origin: str, interval: float = 0.25, max_batch: int = 1000,
        hooks: LedgerHooks | None = None, journal: Journal | None = None,
    ) -> None:
        # Each flush has a fixed cost (a transaction, several hops to the database thread):
        # every 50 ms it cost ~0.1 ms of CPU per request at 1,000 requests/s (bench/).
        self._engine = engine
        self._hooks = hooks
        self._journal = journal  # crash journal of the queued records (ledger/journal.py)
        self._origin = origin
        self._interval = interval
        self._max_batch = max_batch
        self._queue: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._flush_lock = asyncio.Lock()
        self.written = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def queued(self, request_id: str) -> UsageRecord | None:
        """A record settled but not written yet (the console reads a fresh answer's cost)."""
        return next((r for r in reversed(self._queue) if r.id == request_id), None)

    def record(self, rec: UsageRecord) -> None:
        self._queue.append(rec)
        if self._journal is not None:
            try:
                self._journal.append(rec)
            except OSError:  # disk full, folder gone: keep billing, without the journal
                log.exception("ledger journal write failed; journal off until restart")
                self._journal = None
        if len(self._queue) >= self._max_batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ledger-writer")

    async def _run(self) -> None:
        backoff = self._interval
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            self._wake.clear()
            try:
                await self.flush(drain=False)
                backoff = self._interval
            except Exception:
                self.failures += 1
                backoff = min(max(backoff * 2, 0.1), 5.0)
                log.exception("ledger flush failed; %d records kept for retry", self.pending)

    async def flush(self, *, drain: bool = True) -> None:
        """Write the queued records: every one (``drain``, as at shutdown), or only those queued
        when called. The background loop uses the latter: records that arrive during a write
        wait for the next tick, so a busy gateway still writes one batch per interval (it wrote
        back to back before, a dozen records a transaction, ~36 transactions a second)."""
        async with self._flush_lock:
            todo = len(self._queue)
            if todo and self._journal is not None:
                self._journal.rotate()  # records arriving from now on go to a new segment
            while self._queue and (drain or todo > 0):
                batch = self._queue[: self._max_batch if drain else min(todo, self._max_batch)]
                await self._write(batch)
                del self._queue[: len(batch)]
                self.written += len(batch)
                todo -= len(batch)
                if self._journal is not None:
                    self._journal.written(len(batch))

    async def _write(self, batch: list[UsageRecord]) -> None:
        ts = now()
        origin = self._origin
        debits = [(r.account_id, "debit", -r.cost_micro, r.id, "gateway",
                   f"usage {r.requested_model}", origin, ts)
                  for r in batch if r.cost_micro]
        per_account: dict[int, int] = defaultdict(int)
        for d in debits:
            per_account[d[0]] += d[2]
        if self._hooks is not None:
            await self._hooks.before_write(batch)
        versions: dict[int, int] = {}
        async with self._engine.begin() as conn:
            await USAGE_ROWS.run(conn, [_usage_values(r) for r in batch])
            if debits:
                await DEBIT_ROWS.run(conn, debits)
                for account_id, amount in sorted(per_account.items()):  # lock order
                    version = await conn.scalar(
                        update(wallets).where(wallets.c.account_id == account_id)
                        .values(balance_micro=wallets.c.balance_micro + amount,
                                version=wallets.c.version + 1)
                        .returning(wallets.c.version)
                    )
                    versions[account_id] = int(version or 0)
            if self._hooks is not None:
                await self._hooks.in_transaction(conn, batch)
        if self._hooks is not None:
            try:
                await self._hooks.after_write(batch, versions)
            except Exception:  # committed: the hook's own state must cope (see redis_reserver)
                log.warning("ledger after-write hook failed", exc_info=True)

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            for attempt in range(20):
                try:
                    await self.flush()
                    return
                except Exception:
                    log.exception("final ledger flush failed (attempt %d)", attempt + 1)
                    await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
            log.error("ledger: %d usage records could not be written%s", self.pending,
                      "; they stay in the journal for the next start" if self._journal else "")
        finally:
            if self._journal is not None:
                self._journal.close()

    async def recover(self, folder: Path) -> int:
        """Write the journaled records of processes that died (ledger/journal.py) before this
        one serves: those not in the database yet, as ordinary batches. Returns how many."""
        total = 0
        for orphan in journal.orphans(folder):
            try:
                records = orphan.records()
                ids = [r.id for r in records]
                known: set[str] = set()
                async with self._engine.connect() as conn:
                    for i in range(0, len(ids), 500):
                        rows = await conn.execute(select(usage_records.c.id).where(
                            usage_records.c.id.in_(ids[i:i + 500])))
                        known.update(row[0] for row in rows)
                missing = [r for r in records if r.id not in known]
                for i in range(0, len(missing), self._max_batch):
                    await self._write(missing[i:i + self._max_batch])
            except Exception:  # e.g. the database refused a row: keep the files, serve on
                orphan.release(delete=False)
                log.exception("ledger journal: could not recover %s; its files stay for the "
                              "next start", orphan.lock.stem)
                continue
            orphan.release(delete=True)
            if missing:
                log.warning("ledger journal: recovered %d usage records of %s, a process that "
                            "stopped before writing them", len(missing), orphan.lock.stem)
            total += len(missing)
        return total

"""The batched ledger writer: usage records and wallet debits, off the hot path.

``record()`` is synchronous and never awaits, so billing cannot be skipped by a cancelled
request handler. A tracked background task flushes the queue every ``interval`` seconds (or at
once when a batch fills) in one database transaction per batch: the usage rows, one debit
transaction per billed request, and the wallet balances moved by the same sums. A failed flush
keeps the batch and retries; ``close()`` drains everything before shutdown.

One bad record never blocks the ledger. Records are sanitised when queued (ledger/sanitise.py);
a batch the database still refuses for its data is split in halves until the refused record is
alone (``_commit``). That record goes to ``ledger_dead_letters`` with the database's error, a
metric and an error log line, and is billed all the same: a stand-in usage record with the same
id, numbers and ASCII-only text is written with its debit in the same transaction, so the
wallet still moves and every answered request keeps exactly one record. A record whose id is
already in the ledger (written by another process's recovery) is dropped as written. Errors
that are the database's, not the data's (a lost connection, a lock timeout, a database that
does not answer ``SELECT 1``), keep the queue for the next try instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from operator import attrgetter
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from smartoken.ledger import journal
from smartoken.ledger.journal import Journal
from smartoken.ledger.records import ROW_FIELDS, UsageRecord
from smartoken.ledger.sanitise import LIMITS, clean, sanitise
from smartoken.store.bulk import SLICE, BulkInsert
from smartoken.store.repo import now
from smartoken.store.schema import (
    ledger_dead_letters,
    usage_records,
    wallet_transactions,
    wallets,
)

log = logging.getLogger("smartoken.ledger")
# A record's values in the table's column order, the order BulkInsert takes them in.
_USAGE_COLUMNS = [c.name for c in usage_records.c if c.name in ROW_FIELDS]
_usage_values = attrgetter(*_USAGE_COLUMNS)
USAGE_ROWS = BulkInsert(usage_records, _USAGE_COLUMNS)
DEBIT_ROWS = BulkInsert(wallet_transactions, ("account_id", "kind", "amount_micro", "request_id",
                                              "actor", "reason", "origin", "created_at"))
DEAD_LETTER = "dead_letter"  # the stand-in record's error text begins with this


class LedgerHooks(Protocol):
    """What a shared reserver needs around each batch (see budget/redis_reserver.py and
    budget/sql_reserver.py): wait for the batch's settlements before writing, act inside the
    batch's transaction, and learn the wallet versions the batch committed."""

    async def before_write(self, batch: list[UsageRecord]) -> None: ...

    async def in_transaction(self, conn: AsyncConnection, batch: list[UsageRecord]) -> None: ...

    async def after_write(self, batch: list[UsageRecord], versions: dict[int, int]) -> None: ...


class JournalMirror(Protocol):
    """A second, shared copy of the crash journal (budget/redis_reserver.py: a Redis hash per
    replica, drained by any live replica when this one dies). Synchronous, never awaits."""

    def journal(self, rid: str, line: bytes, *, progress: bool = False,
                cost: int = 0) -> None: ...


class _Stalled(Exception):
    """The database failed (not the data): ``done`` records from the batch's front are
    written, the rest stay queued."""

    def __init__(self, done: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.done = done
        self.cause = cause


def database_failed(exc: BaseException) -> bool:
    """The error is the database's or the connection's, not one row's data."""
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return True
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError))


def stand_in(rec: UsageRecord, error: str) -> UsageRecord:
    """A record the database takes for sure: the same id, numbers and windows, ASCII text."""
    def ascii_only(value: str | None, limit: int) -> str | None:
        if value is None:
            return None
        return clean(value.encode("ascii", "replace").decode("ascii"), limit)

    # text fields by column name: each a str field of the record, so str stays str
    texts: dict[str, Any] = {name: ascii_only(getattr(rec, name), limit)
                             for name, limit in LIMITS.items() if name != "error"}
    out = replace(rec, **texts, attempts=None,
                  error=f"{DEAD_LETTER}: {clean(error, 300)}"[:1000])
    return sanitise(out)


class LedgerWriter:
    def __init__(
        self, engine: AsyncEngine, origin: str, interval: float = 0.25, max_batch: int = 1000,
        hooks: LedgerHooks | None = None, journal: Journal | None = None,
        on_dead_letter: Callable[[], None] | None = None, mirror: JournalMirror | None = None,
    ) -> None:
        # Each flush has a fixed cost (a transaction, several hops to the database thread):
        # every 50 ms it cost ~0.1 ms of CPU per request at 1,000 requests/s (bench/).
        self._engine = engine
        self._hooks = hooks
        self._journal = journal  # crash journal of the queued records (ledger/journal.py)
        self._origin = origin
        self._interval = interval
        self._max_batch = max_batch
        self._on_dead_letter = on_dead_letter
        self._mirror = mirror
        self._queue: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._flush_lock = asyncio.Lock()
        self.written = 0
        self.failures = 0
        self.dead_letters = 0
        # Told of each committed batch, in the writer's task (the alert watcher, alerts/).
        self.on_written: Callable[[list[UsageRecord]], None] | None = None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def queued(self, request_id: str) -> UsageRecord | None:
        """A record settled but not written yet (the console reads a fresh answer's cost)."""
        return next((r for r in reversed(self._queue) if r.id == request_id), None)

    def record(self, rec: UsageRecord) -> None:
        sanitise(rec)
        self._queue.append(rec)
        if self._journal is not None or self._mirror is not None:
            line = journal.line(rec)
            if self._mirror is not None:
                self._mirror.journal(rec.id, line, cost=rec.cost_micro)
            if self._journal is not None:
                try:
                    self._journal.append(rec, line)
                except OSError:  # disk full, folder gone: keep billing, without the journal
                    log.exception("ledger journal write failed; journal off until restart")
                    self._journal = None
        if len(self._queue) >= self._max_batch:
            self._wake.set()

    def progress(self, rec: UsageRecord) -> None:
        """A running stream's record so far, to the crash journal only (never queued): if the
        process dies before the stream ends, recovery bills it for what it delivered."""
        sanitise(rec)
        if self._mirror is not None:
            self._mirror.journal(rec.id, journal.progress_line(rec), progress=True)
        if self._journal is not None:
            try:
                self._journal.progress(rec)
            except OSError:
                log.exception("ledger journal write failed; journal off until restart")
                self._journal = None

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
                try:
                    await self._commit(batch)
                    done = len(batch)
                except _Stalled as stalled:
                    self._written(stalled.done)
                    raise stalled.cause from None
                self._written(done)
                todo -= done

    def _written(self, n: int) -> None:
        if n:
            del self._queue[:n]
            self.written += n
            if self._journal is not None:
                self._journal.written(n)

    async def _commit(self, batch: list[UsageRecord]) -> None:
        """Write ``batch``; if the database refuses its data, isolate the refused records by
        halving (front half first, so what is written is always a prefix of the batch).
        Raises ``_Stalled`` when the database itself fails."""
        try:
            await self._write(batch)
            return
        except Exception as exc:
            if database_failed(exc) or not await self._answers():
                raise _Stalled(0, exc) from exc
            if len(batch) == 1:
                await self._dead_letter(batch[0], exc)
                return
            log.warning("ledger batch of %d refused (%s); isolating the refused record",
                        len(batch), type(exc).__name__)
        half = len(batch) // 2
        await self._commit(batch[:half])
        try:
            await self._commit(batch[half:])
        except _Stalled as stalled:
            raise _Stalled(half + stalled.done, stalled.cause) from stalled.cause

    async def _answers(self) -> bool:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def _dead_letter(self, rec: UsageRecord, exc: BaseException) -> None:
        """``rec`` alone was refused: drop it if its id is written already, else keep it in
        the dead-letter table and bill it through a stand-in record."""
        try:
            async with self._engine.connect() as conn:
                known = await conn.scalar(select(usage_records.c.id)
                                          .where(usage_records.c.id == rec.id))
        except Exception as err:
            raise _Stalled(0, err) from err
        if known is not None:
            log.info("ledger: usage record %s is written already; dropped the copy", rec.id)
            forget = getattr(self._hooks, "written_elsewhere", None)
            if forget is not None:  # the Redis reserver's hold of it (see redis_reserver)
                forget(rec.id)
            return
        error = f"{type(exc).__name__}: {getattr(exc, 'orig', None) or exc}"
        payload = json.dumps({n: getattr(rec, n) for n in ROW_FIELDS}, default=str,
                             ensure_ascii=True)
        row = {"request_id": rec.id[:40], "account_id": rec.account_id, "payload": payload,
               "error": clean(error, 2000), "origin": self._origin[:40], "created_at": now()}
        try:
            await self._write([stand_in(rec, error)], dead=row)
        except Exception as err:  # even the stand-in: keep the letter, the debit is lost
            if database_failed(err) or not await self._answers():
                raise _Stalled(0, err) from err
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(insert(ledger_dead_letters).values(**row))
            except Exception as err2:
                raise _Stalled(0, err2) from err2
            log.error("ledger: usage record %s refused even as a stand-in (%s); kept in "
                      "ledger_dead_letters UNBILLED (cost %d micro-USD)", rec.id, err,
                      rec.cost_micro)
            self._count_dead_letter()
            return
        self._count_dead_letter()
        log.error("ledger: usage record %s refused by the database (%s); kept in "
                  "ledger_dead_letters and billed through a stand-in record (cost %d "
                  "micro-USD)", rec.id, clean(error, 300), rec.cost_micro)

    def _count_dead_letter(self) -> None:
        self.dead_letters += 1
        if self._on_dead_letter is not None:
            self._on_dead_letter()

    async def _write(self, batch: list[UsageRecord], dead: dict[str, object] | None = None,
                     ) -> None:
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
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(batch), SLICE):  # ~1.5 µs a record: yield between slices
            if start:
                await asyncio.sleep(0)
            rows.extend(_usage_values(r) for r in batch[start:start + SLICE])
        async with self._engine.begin() as conn:
            await USAGE_ROWS.run(conn, rows)
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
            if dead is not None:
                await conn.execute(insert(ledger_dead_letters).values(**dead))
        if self._hooks is not None:
            try:
                await self._hooks.after_write(batch, versions)
            except Exception:  # committed: the hook's own state must cope (see redis_reserver)
                log.warning("ledger after-write hook failed", exc_info=True)
        if self.on_written is not None:
            try:
                self.on_written(batch)
            except Exception:
                log.warning("ledger on-written callback failed", exc_info=True)

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

    async def recover(self, folder: Path, min_age: float = 0.0,
                      on_orphan: Callable[[str], Awaitable[None]] | None = None) -> int:
        """Write the journaled records of processes that died (ledger/journal.py): those not
        in the database yet, as ordinary batches (a refused record is dead-lettered, as in a
        flush). ``min_age``: see ``journal.orphans``. ``on_orphan(origin)`` runs once a dead
        process's records are written (the SQL reserver releases what it still held).
        Returns how many."""
        total = 0
        for orphan in journal.orphans(folder, min_age):
            try:
                missing = await self.write_recovered(orphan.records())
                if on_orphan is not None:
                    await on_orphan(orphan.lock.stem)
            except Exception:  # the database is unavailable: keep the files, serve on
                orphan.release(delete=False)
                log.exception("ledger journal: could not recover %s; its files stay for the "
                              "next start", orphan.lock.stem)
                continue
            orphan.release(delete=True)
            if missing:
                log.warning("ledger journal: recovered %d usage records of %s, a process that "
                            "stopped before writing them", missing, orphan.lock.stem)
            total += missing
        return total

    async def write_recovered(self, records: list[UsageRecord]) -> int:
        """Write the records of a process that died, those not in the database yet, as
        ordinary batches (a refused record is dead-lettered, one already written is dropped).
        Raises when the database fails. Returns how many were written."""
        ids = [r.id for r in records]
        known: set[str] = set()
        async with self._engine.connect() as conn:
            for i in range(0, len(ids), 500):
                rows = await conn.execute(select(usage_records.c.id).where(
                    usage_records.c.id.in_(ids[i:i + 500])))
                known.update(row[0] for row in rows)
        missing = [sanitise(r) for r in records if r.id not in known]
        for i in range(0, len(missing), self._max_batch):
            try:
                await self._commit(missing[i:i + self._max_batch])
            except _Stalled as stalled:
                raise stalled.cause from None
        return len(missing)

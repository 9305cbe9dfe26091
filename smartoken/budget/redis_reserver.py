"""The no-overspend guarantee across replicas: reservations in Redis, the ledger in PostgreSQL.

Same interface as ``MemoryReserver``. ``reserve`` checks the worst case against the wallet and
the key's daily and monthly budgets and records the reservation in one Lua script (see
``redis_scripts``), so N replicas can never together reserve more than there is.

Counters come from the ledger of record. A counter missing in Redis (first use, expiry every
``counter_ttl`` seconds, a credit, or Redis lost its data) is loaded from one consistent
PostgreSQL snapshot that carries the wallet ``version``; every ledger batch bumps that version.

No double counting, no undercounting, when a counter is (re)loaded while a replica holds
settled debits not yet written to PostgreSQL: a settled cost stays *held* as a reservation
(its amount turned from the worst case into the actual cost) until the ledger batch that writes
it has committed. Then one script (``after_write``), per account and batch, releases the held
costs and adds them to every counter loaded from a snapshot older than the batch's version
(a counter loaded at or after it already holds them). So at every instant each cost is counted
exactly once: held, or in the counter; momentarily twice (conservative) if a counter is loaded
between the commit and the script. A loader whose snapshot is older than a batch already
applied is refused and reads again (the per-account floor), and the script is idempotent per
batch, so it is retried until it lands.

Reservations, running or settled-unwritten, carry a deadline refreshed by their replica's
heartbeat every ttl/4; a sweep script (run by every replica) releases those past it.

A killed replica's reservations are released sooner (issue 12, item 8): each replica refreshes a
liveness key (``ALIVE_TTL`` = 3 s) every second and lists its reservation ids in a set of its
own; every second each live replica releases the reservations of any replica whose liveness key
expired, so a killed replica's hold on a budget is gone within ~4 s. Its settled-but-unwritten
records are in its journal hash in Redis (each rides on its SETTLE; a stream's progress about
once a second; one HDEL per committed batch): the same LIVENESS script renames that hash to a
claim of the live replica that found the death, which writes the records through the ledger
(ids already written skipped) and so adds them to the loaded counters (``after_write``), then
deletes it. A replica that was only stalled for longer than ``ALIVE_TTL`` finds its key gone at
its next beat and re-registers its reservations; a record of it that a peer already wrote
from its journal is dropped by its own flush, which releases the re-registered hold
(``written_elsewhere``).

Redis down: ``fail_open=False`` (default) refuses with 503 ``budget_store_unavailable``;
``fail_open=True`` reserves against this replica's share of what was left (budget/fallback.py).

Redis back, fail-open (issue 12, item 9): the counters miss what the replicas spent on their
shares (fallback reservations still running, costs settled and not yet written, batches written
whose AFTER_BATCH could not run). A replica that lost Redis does not use the counters again
before it pushed all of it: ``_rejoin`` applies its pending batches, registers its fallback
reservations (running at their worst case, settled at their cost) in one script that also raises
a *fence* naming every replica that heartbeated before the outage, then acknowledges (leaves the
fence) if it spent nothing meanwhile. Every replica reaches the fence within a second (its
liveness beat says it is named) and does the same. While the fence stands, RESERVE answers
'fenced' and a request waits for it to lift (at most ``FENCE_WAIT``, then 503), so nobody reserves
on counters that miss a peer's outage spend; a replica named by a fence that never acknowledges
(killed during the outage) holds it for ``FENCE_MS`` at most. A reservation made on the share
while an acknowledgement was in flight is given back and retried (it might be missing from what
was pushed): after its acknowledgement a replica spends on its share only again after a new
failure, which starts a new outage (and a new fence when Redis answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from sqlalchemy import exc as sa_errors
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from smartoken.auth.keys import KeyContext
from smartoken.budget import redis_scripts as lua
from smartoken.budget.fallback import ShareReserver
from smartoken.budget.reserver import Reservation
from smartoken.budget.shared import DB_DOWN, SharedReserver, store_down
from smartoken.budget.windows import Windows
from smartoken.cluster.options import ClusterOptions
from smartoken.cluster.redis_pool import REDIS_ERRORS, RedisBusy
from smartoken.errors import (
    BudgetExceeded,
    BudgetStoreBusy,
    BudgetStoreUnavailable,
    InsufficientBalance,
)
from smartoken.ledger import journal as file_journal
from smartoken.ledger.records import UsageRecord
from smartoken.money import format_usd
from smartoken.store import snapshots

log = logging.getLogger("smartoken.budget")
CREDIT_POLL = 1.0
ALIVE_EVERY = 1.0  # seconds between liveness beats
ALIVE_TTL = 3.0  # a replica silent this long is dead: its reservations are released
FENCE_MS = 5000  # a fence nobody acknowledges (a replica killed in the outage) lifts after this
FENCE_WAIT = 2.0  # a request waits this long for the fence to lift, then gets a 503
FENCE_POLL = 0.05
HOLD = "hold"  # the window of a hold (key 0): never a real day or month


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class JournalDrainer(Protocol):
    """Writes a dead replica's journaled records through the ledger's normal path, skipping
    those already written (ledger/writer.py ``write_recovered``)."""

    async def write_recovered(self, records: list[UsageRecord]) -> int: ...


class _Retry(Exception):
    """A fail-open reservation overlapped an acknowledgement of the fence: it was given back."""


class RedisReserver(SharedReserver):
    def __init__(self, engine: AsyncEngine, windows: Windows, redis: Redis,
                 options: ClusterOptions, origin: str) -> None:
        super().__init__()
        self._engine = engine
        self.windows = windows
        self._redis = redis
        self._opt = options
        self._origin = origin
        self._p = options.prefix
        self._reserve = redis.register_script(lua.RESERVE)
        self._settle = redis.register_script(lua.SETTLE)
        self._sweep = redis.register_script(lua.SWEEP)
        self._load = redis.register_script(lua.LOAD)
        self._after = redis.register_script(lua.AFTER_BATCH)
        self._invalidate = redis.register_script(lua.INVALIDATE)
        self._hold = redis.register_script(lua.HOLD)
        self._reconcile = redis.register_script(lua.RECONCILE)
        self._holds: dict[tuple[int, int], list[str]] = defaultdict(list)
        self._beat = redis.register_script(lua.HEARTBEAT)
        self._liveness = redis.register_script(lua.LIVENESS)
        self._force_beat = False  # this replica was taken for dead: re-register at next beat
        self._alive_seen = False
        self._live: dict[str, Reservation] = {}  # held in Redis: running, or settled unwritten
        self._held: dict[str, int] = {}  # settled amount of the settled ones
        self._unapplied: list[tuple[int, int, str, list[Any]]] = []  # batches for AFTER_BATCH
        self._batch_seq = 0
        self._apply_lock = asyncio.Lock()
        # Fail-open: the share counters of the current outage, and of each reservation made
        # on them (an older outage's counters live on until their reservations settle).
        self._fallback: ShareReserver | None = None
        self._fallback_of: dict[str, ShareReserver] = {}
        self._replicas = 1  # replicas heartbeating in Redis, as last seen
        # Fail-open reservations Redis does not know yet (running, or settled at the cost in
        # ``_offline_cost`` and not yet in a committed batch), and the outage state: ``_out``
        # while this replica lost Redis and has not pushed them and acknowledged the fence.
        self._offline: dict[str, Reservation] = {}
        self._offline_cost: dict[str, int] = {}
        self._out = False
        self._out_since = 0.0  # wall clock: the outage started (the fence names replicas since)
        self._gen = 0  # bumped by every Redis failure and every fail-open reservation
        self._acks = 0  # fence acknowledgements begun
        self._acking = False
        self._rejoin_lock = asyncio.Lock()
        self._rejoin_task: asyncio.Future[bool] | None = None
        self._rejoin_script = redis.register_script(lua.REJOIN)
        self._fence_ack = redis.register_script(lua.FENCE_ACK)
        # What the shared counters said at the last heartbeat, for the keys served here.
        self._touched: dict[tuple[int, int, str, str], float] = {}
        self._known_available: dict[int, int] = {}
        self._known_used: dict[tuple[int, str], int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.redis_ok = True
        # The Redis journal (issue 12, item 8): usage records waiting for their settle script
        # to carry them, the journals of dead replicas claimed by this one, and what writes
        # them to the ledger (set by ``attach_ledger``).
        self._jlines: dict[str, bytes] = {}
        self._claims: set[str] = set()
        self._drainer: JournalDrainer | None = None
        self._draining: asyncio.Task[None] | None = None
        self._side: set[asyncio.Task[Any]] = set()

    # -------------------------------------------------------------- keys

    def _keys(self, account_id: int, key_id: int, day: str, month: str) -> list[str]:
        p = self._p
        return [f"{p}ab:{account_id}", f"{p}ar:{account_id}",
                f"{p}ks:{key_id}:{day}", f"{p}kr:{key_id}:{day}",
                f"{p}ks:{key_id}:{month}", f"{p}kr:{key_id}:{month}",
                f"{p}res", f"{p}resd", f"{p}epoch", f"{p}sums", f"{p}own:{self._origin}",
                f"{p}fence"]

    # -------------------------------------------------------------- the guarantee

    async def reserve(self, key: KeyContext, amount: int,
                      request_id: str = "") -> Reservation:
        ts, day, month = self.windows.now()
        rid = request_id or "res_" + secrets.token_hex(12)
        keys = self._keys(key.account_id, key.key_id, day, month)
        meta = f"{key.account_id}|{key.key_id}|{day}|{month}|{amount}"
        limits = [-1 if key.daily_budget is None else key.daily_budget,
                  -1 if key.monthly_budget is None else key.monthly_budget]
        give_up = time.monotonic() + FENCE_WAIT
        retries = 0
        while True:
            seen = self._acks
            try:
                if self._out:  # push the outage's spend before using the counters
                    await self._rejoin_shared()
                    seen = self._acks
                verdict, value = await self._check(key, day, month, keys, [
                    amount, *limits, rid, 0.0, meta, 0.0, self._opt.reservation_ttl / 3 + 0.5])
            except RedisBusy as exc:  # Redis is up; this process is overloaded: never fail open
                log.warning("redis busy, refusing budgeted request: %s", exc)
                raise BudgetStoreBusy(
                    "The gateway is overloaded: no connection to the shared budget store "
                    "(Redis) became free in time; the request was not sent upstream. Retry "
                    "shortly.") from None
            except REDIS_ERRORS as exc:
                self._lost()
                if not self._opt.fail_open:
                    log.warning("redis unreachable, refusing budgeted request: %s", exc)
                    raise BudgetStoreUnavailable(
                        "The shared budget store (Redis) is unreachable, so this request's "
                        "budget cannot be checked; it was not sent upstream. Retry shortly.") \
                        from None
                try:
                    return await self._reserve_locally(key, amount, rid, seen)
                except _Retry:
                    retries += 1
                    if retries < 3:
                        continue
                    raise BudgetStoreUnavailable(
                        "The shared budget store (Redis) is coming back; retry shortly.") \
                        from None
            self.redis_ok = True
            if verdict == "fenced" and time.monotonic() < give_up:
                await asyncio.sleep(FENCE_POLL)
                continue
            break
        if verdict == "fenced":
            raise BudgetStoreUnavailable(
                "Redis answers again after an outage and the replicas are still adding what "
                "they spent meanwhile to the shared budget counters; retry in a second.")
        if verdict == "warming":
            # Both policies: the counters are being rebuilt and replicas re-register what they
            # hold; spending on a share now could be missed by the counters once warm.
            raise BudgetStoreUnavailable(
                "Redis lost its data and the budget counters are being rebuilt from the ledger "
                "(in-flight reservations are re-registered by their replicas); retry in a few "
                "seconds.")
        if verdict == "wallet":
            raise InsufficientBalance(
                f"Insufficient wallet balance: this request may cost up to ${format_usd(amount)}"
                f" and ${format_usd(max(int(value), 0))} is available. Credit the wallet or "
                "lower max_tokens.")
        if verdict in ("daily", "monthly"):
            window = day if verdict == "daily" else month
            limit = key.daily_budget if verdict == "daily" else key.monthly_budget
            raise BudgetExceeded(
                f"The key's {verdict} budget of ${format_usd(limit or 0)} would be exceeded: "
                f"${format_usd(int(value))} is spent or reserved in {window} and this request "
                f"may cost up to ${format_usd(amount)}.", param=f"{verdict}_budget")
        self._fallback = None  # Redis answers: the outage is over, shared counters from now
        self._touched[(key.key_id, key.account_id, day, month)] = time.monotonic()
        res = Reservation(key.key_id, key.account_id, amount, day, month, ts, id=rid)
        self._live[rid] = res
        self.in_flight += 1
        return res

    async def _check(self, key: KeyContext, day: str, month: str, keys: list[str],
                     args: list[Any]) -> tuple[str, Any]:
        """RESERVE, loading missing counters from the ledger; the verdict and its value."""
        for _ in range(6):
            now = time.time()
            args[4], args[6] = now + self._opt.reservation_ttl, now
            verdict, value = await self._run_reserve(keys, args)
            verdict = _text(verdict)
            if verdict != "load":
                return verdict, value
            try:
                await self._load_missing(key, day, month, _text(value))
            except sa_errors.IntegrityError:
                raise
            except DB_DOWN as exc:  # e.g. PostgreSQL's "too many clients": not a 500
                raise store_down(exc) from None
        raise BudgetStoreUnavailable("Budget counters could not be loaded; retry.")

    async def _run_reserve(self, keys: list[str], args: list[Any]) -> Any:
        """A slow answer (an overloaded host) is retried: the script is idempotent per id.
        A refused connection is not: Redis is down."""
        for attempt in range(3):
            try:
                return await self._reserve(keys=keys, args=args)
            except redis_errors.TimeoutError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _reserve_locally(self, key: KeyContext, amount: int, rid: str,
                               seen: int) -> Reservation:
        """Fail-open policy: this replica's share of what the ledger says is left. The
        reservation is owed to Redis (``_offline``) until ``_rejoin`` pushes it. ``seen``: the
        acknowledgements begun when this request last tried Redis; if one began since, this
        reservation may be missing from what it pushed, so it is given back (``_Retry``)."""
        if self._fallback is None:
            self._fallback = ShareReserver(self._engine, self.windows, self._replicas,
                                           self._known_available, self._known_used)
            log.warning("redis unreachable: serving on this replica's share (1/%d) of each "
                        "budget and wallet until it answers", self._replicas)
        share = self._fallback
        res = await share.reserve(key, amount, rid)
        if self._acks != seen or self._acking:
            share.release(res)
            raise _Retry
        # From here: no await, so a rejoin either sees this reservation or starts after it.
        self._offline[rid] = res
        self._fallback_of[rid] = share
        self.in_flight += 1
        self._lost()
        return res

    def _lost(self, exc: BaseException | None = None) -> None:
        """Redis failed (or this replica spent on its share): with fail-open, what Redis does
        not know must be pushed, and the fence raised, before the counters are used again.
        A busy pool is not an outage (Redis answers; nothing is spent on a share then)."""
        if isinstance(exc, RedisBusy):
            return
        self._gen += 1
        self.redis_ok = False
        if self._opt.fail_open and not self._out:
            self._out = True
            self._out_since = time.time()

    async def _rejoin_shared(self) -> None:
        """One rejoin at a time that every request waiting for it shares (during an outage
        each attempt may wait for a connect timeout: requests wait for it together)."""
        task = self._rejoin_task
        if task is None or task.done():
            task = self._rejoin_task = asyncio.ensure_future(self._rejoin())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        await asyncio.shield(task)

    async def _rejoin(self, named: bool = False) -> bool:
        """Redis answers: push what this replica holds that Redis does not know (see REJOIN),
        raise the fence if this replica lost Redis, then leave the fence if nothing was spent or
        failed meanwhile. ``named``: the liveness beat says this replica is in a fence. Returns
        True once acknowledged. Raises the Redis errors (the outage goes on)."""
        async with self._rejoin_lock, self._apply_lock:
            for _ in range(5):
                if not (self._out or named):
                    return True
                gen = self._gen
                await self._apply_pending()  # committed batches first (AFTER_BATCH)
                # From here to the script call: no await, so every cost is in a batch applied
                # above, or in ``_offline``/``_live`` now (after_write moves it synchronously).
                now, ttl = time.time(), self._opt.reservation_ttl
                args: list[Any] = [self._p, now + ttl, self._origin,
                                   self._out_since - ttl, FENCE_MS, "1" if self._out else "0"]
                pushed: dict[str, int | None] = {}
                for rid, res in list(self._offline.items()):
                    cost = self._offline_cost.get(rid)
                    if cost == 0:  # released on the share: nothing to push
                        del self._offline[rid]
                        del self._offline_cost[rid]
                        continue
                    pushed[rid] = cost
                    args += [rid, self._meta(res, res.amount if cost is None else cost)]
                for rid, res in self._live.items():
                    args += [rid, self._meta(res, self._held.get(rid, res.amount))]
                p = self._p
                restored = await self._rejoin_script(
                    keys=[f"{p}res", f"{p}resd", f"{p}sums", f"{p}own:{self._origin}",
                          f"{p}fence", f"{p}replicas"], args=args)
                self._adopt(pushed)
                if restored:
                    log.warning("redis answers: registered %d reservations it did not hold "
                                "(spent on this replica's share while it was unreachable)",
                                restored)
                if self._gen != gen:
                    continue  # spent or failed meanwhile: push again before acknowledging
                self._acking = True
                self._acks += 1
                try:
                    await self._fence_ack(keys=[f"{p}fence"], args=[self._origin])
                finally:
                    self._acking = False
                if self._gen == gen:
                    self._out = False
                    return True
            return False

    @staticmethod
    def _meta(res: Reservation, amount: int) -> str:
        return f"{res.account_id}|{res.key_id}|{res.day}|{res.month}|{amount}"

    def _adopt(self, pushed: dict[str, int | None]) -> None:
        """Fallback reservations now registered in Redis become ordinary ones: settled through
        Redis, heartbeated, released by their ledger batch (AFTER_BATCH)."""
        for rid, cost_then in pushed.items():
            res = self._offline.pop(rid, None)
            if res is None:  # its record's batch committed meanwhile: AFTER_BATCH releases it
                continue
            cost = self._offline_cost.pop(rid, None)
            if cost is None:  # still running: its settle goes through Redis from now
                self._fallback_of.pop(rid, None)
                self._live[rid] = res
            elif cost:
                self._live[rid] = res
                self._held[rid] = cost
                if cost_then is None:  # settled while being pushed at its worst case
                    self._track(rid, self._settle_remote(res, cost))
            else:  # released while being pushed
                self._track(rid, self._settle_remote(res, 0))

    async def _load_wallet(self, account_id: int) -> None:
        await self._load_counter(f"{self._p}ab:{account_id}", account_id, "bal",
                                 lambda: snapshots.wallet_counter(self._engine, account_id))

    async def _load_missing(self, key: KeyContext, day: str, month: str, need: str) -> None:
        if "a" in need:
            await self._load_wallet(key.account_id)
        for flag, window in (("d", day), ("m", month)):
            if flag in need:
                await self._load_counter(
                    f"{self._p}ks:{key.key_id}:{window}", key.account_id, "spent",
                    lambda w=window: snapshots.key_window_counter(  # type: ignore[misc]
                        self._engine, key.account_id, key.key_id, w))

    async def _load_counter(self, counter: str, account_id: int, field: str,
                            read: Callable[[], Awaitable[tuple[int, int]]]) -> None:
        """Load one counter from a ledger snapshot. A snapshot older than the floor is read
        again; if the fresh one is still below it, the database went back in time (a restore)
        and the floor follows it, instead of refusing the account forever."""
        floor = f"{self._p}av:{account_id}"
        for heal in ("0", "1"):
            value, version = await read()
            done = await self._load(keys=[counter, floor], args=[
                field, value, version, secrets.token_hex(6), self._opt.counter_ttl, heal])
            if done == 2:
                log.warning("account %d: the ledger is older than Redis remembered (a database "
                            "restore?); counters follow the ledger", account_id)
            if done:
                return

    def settle(self, res: Reservation, actual: int) -> int:
        """Replace the reservation by the actual cost (0 releases it) and return what was
        charged: the actual cost in full, also above the reservation (the upstream bills it;
        the budget may go over by this one request, then refuses). Idempotent, never
        awaits: the Redis update runs in a task the ledger batch waits for. A settled cost
        stays held (and heartbeated) until its ledger batch has committed."""
        if res.done:
            return 0
        share = self._fallback_of.pop(res.id, None)
        if share is not None:  # reserved while Redis was down (fail-open)
            self.in_flight -= 1
            if res.id in self._offline:  # owed to Redis at its cost until its batch commits
                self._offline_cost[res.id] = actual
            return share.settle(res, actual)
        res.done = True
        self.in_flight -= 1
        if actual:
            self._held[res.id] = actual
        else:
            self._live.pop(res.id, None)
        self._track(res.id, self._settle_remote(res, actual))
        return actual

    async def _settle_remote(self, res: Reservation, actual: int) -> None:
        keys = self._keys(res.account_id, res.key_id, res.day, res.month)
        keys.append(f"{self._p}journal:{self._origin}")
        try:
            for attempt in range(3):
                # the usage record, queued by the ledger since this task was made (journal())
                line = self._jlines.pop(res.id, b"")
                try:
                    if not await self._settle(keys=keys, args=[res.id, actual, line]):
                        log.warning("reservation %s expired before it was settled (heartbeats "
                                    "late or Redis lost it); raise SMARTOKEN_RESERVATION_TTL "
                                    "if this repeats", res.id)
                    return
                except REDIS_ERRORS as exc:
                    if line:
                        self._jlines[res.id] = line
                    self._lost(exc)
                    await asyncio.sleep(0.2 * (attempt + 1))
            # Not applied: the worst case stays held until the batch (or the expiry) releases it.
        finally:
            late = self._jlines.pop(res.id, None)  # queued while the script was running
            if late:
                await self._jset(res.id, late)

    # -------------------------------------------------------------- holds and views

    async def hold(self, account_id: int, amount: int) -> bool:
        """A reservation without a key (key 0, window ``hold``) checked against the balance in
        one script; released by ``unhold`` after the shared balance was dropped."""
        rid = "hold_" + secrets.token_hex(12)
        keys = self._keys(account_id, 0, HOLD, HOLD)
        ttl = self._opt.reservation_ttl
        try:
            for _ in range(6):
                now = time.time()
                verdict, _value = await self._hold(keys=keys, args=[
                    amount, rid, now + ttl, f"{account_id}|0|{HOLD}|{HOLD}|{amount}", now,
                    ttl / 3 + 0.5])
                verdict = _text(verdict)
                if verdict != "load":
                    break
                await self._load_wallet(account_id)
            else:
                verdict = "warming"
        except REDIS_ERRORS:
            verdict = "warming"
        if verdict == "warming":
            raise BudgetStoreUnavailable("The shared budget store (Redis) cannot check the "
                                         "wallet right now; nothing was changed. Retry shortly.")
        if verdict == "wallet":
            return False
        self._holds[(account_id, amount)].append(rid)
        return True

    async def unhold(self, account_id: int, amount: int) -> None:
        """The adjustment is written (or failed): drop the shared balance first, so a request
        never sees the old balance without the hold, then release the hold."""
        ids = self._holds.get((account_id, amount))
        if not ids:
            return
        rid = ids.pop()
        if not ids:
            del self._holds[(account_id, amount)]
        try:
            await self._drop_balance(account_id)
        finally:
            try:
                await self._settle(keys=self._keys(account_id, 0, HOLD, HOLD), args=[rid, 0])
            except REDIS_ERRORS:  # swept after the reservation TTL
                log.warning("could not release hold %s; it expires with its TTL", rid)

    async def _drop_balance(self, account_id: int) -> None:
        _bal, version = await snapshots.wallet_counter(self._engine, account_id)
        await self._invalidate(keys=[f"{self._p}av:{account_id}", f"{self._p}ab:{account_id}"],
                               args=[version])

    async def apply_external(self, txns: list[tuple[int, int, int]]) -> None:
        """A credit or adjustment written to the ledger: the shared balance reloads at once
        (the credit poller does the same for transactions written by anyone, within 1 s)."""
        if self._fallback is not None:
            await self._fallback.apply_external(txns)
        for account_id in sorted({a for _txn, a, _amount in txns}):
            with contextlib.suppress(*REDIS_ERRORS):
                await self._drop_balance(account_id)

    async def snapshot(self, account_id: int) -> tuple[int, int] | None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(f"{self._p}ab:{account_id}", "bal")
                pipe.get(f"{self._p}ar:{account_id}")
                bal, held = await pipe.execute()
        except REDIS_ERRORS:
            return None
        return None if bal is None else (int(bal), int(held or 0))

    async def key_snapshot(self, key_id: int, day: str,
                           month: str) -> tuple[int, int, int] | None:
        p = self._p
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(f"{p}ks:{key_id}:{day}", "spent")
                pipe.hget(f"{p}ks:{key_id}:{month}", "spent")
                pipe.get(f"{p}kr:{key_id}:{day}")
                d, m, held = await pipe.execute()
        except REDIS_ERRORS:
            return None
        if d is None or m is None:
            return None
        return int(d), int(m), int(held or 0)

    # -------------------------------------------------------------- ledger hooks

    async def in_transaction(self, conn: AsyncConnection, batch: list[UsageRecord]) -> None:
        pass

    async def after_write(self, batch: list[UsageRecord], versions: dict[int, int]) -> None:
        """The batch committed: release its held costs and bring them into the counters
        loaded before it, atomically per account. Retried by the heartbeat until it lands."""
        per_account: dict[int, list[Any]] = defaultdict(list)
        for r in batch:
            if r.cost_micro and r.account_id in versions:
                per_account[r.account_id] += [r.id, r.key_id, r.day, r.month, r.cost_micro]
                # A fail-open cost now travels with its batch (added by AFTER_BATCH).
                self._offline.pop(r.id, None)
                self._offline_cost.pop(r.id, None)
        self._forget_journaled(batch)
        self._batch_seq += 1
        for account_id, args in per_account.items():
            done = f"{self._p}done:{self._origin}:{self._batch_seq}:{account_id}"
            self._unapplied.append((account_id, versions[account_id], done, args))
        try:
            await self._apply_batches()
        except REDIS_ERRORS as exc:
            self._lost(exc)
            raise

    async def _apply_batches(self) -> None:
        async with self._apply_lock:
            await self._apply_pending()

    async def _apply_pending(self) -> None:
        while self._unapplied:
            account_id, version, done, args = self._unapplied[0]
            await self._after(
                keys=[f"{self._p}av:{account_id}", done, f"{self._p}res", f"{self._p}resd"],
                args=[self._p, version, account_id, *args])
            self._unapplied.pop(0)
            for rid in args[0::5]:
                self._live.pop(rid, None)
                self._held.pop(rid, None)

    # -------------------------------------------------------------- background

    async def start(self) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self._redis.set(f"{self._p}epoch", 0, nx=True)
        with contextlib.suppress(*REDIS_ERRORS):
            await self._count_replicas(time.time())
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._heartbeat(), name="reservations"),
                       loop.create_task(self._alive(), name="liveness"),
                       loop.create_task(self._credits(), name="credits")]

    async def beat_once(self) -> None:
        """Push the deadline of this replica's live reservations (re-register those Redis
        forgot, or released while this replica was taken for dead)."""
        now = time.time()
        ttl = self._opt.reservation_ttl
        force = self._force_beat
        args: list[Any] = [self._p, now + ttl, now, ttl / 3 + 0.5, ttl, "1" if force else "0"]
        for rid, res in list(self._live.items()):
            amount = self._held.get(rid, res.amount)
            args += [rid, f"{res.account_id}|{res.key_id}|{res.day}|{res.month}|{amount}"]
        restored = await self._beat(
            keys=[f"{self._p}res", f"{self._p}resd", f"{self._p}epoch", f"{self._p}sums",
                  f"{self._p}own:{self._origin}"], args=args)
        if force:
            self._force_beat = False
        if restored:
            log.warning("re-registered %d reservations Redis had lost", restored)

    async def alive_once(self) -> int:
        """Refresh this replica's liveness key and release the reservations of replicas whose
        key expired. Returns how many were released."""
        p = self._p
        was, released, named, claimed = await self._liveness(
            keys=[f"{p}alive:{self._origin}", f"{p}own:{self._origin}", f"{p}owners",
                  f"{p}resd", f"{p}res", f"{p}fence"],
            args=[p, self._origin, int(ALIVE_TTL * 1000)])
        if claimed:
            self._claims.update(_text(c) for c in claimed)
            log.warning("claimed %d journals of replicas that stopped; writing them",
                        len(claimed))
        if self._claims and self._drainer is not None and (
                self._draining is None or self._draining.done()):
            self._draining = asyncio.get_running_loop().create_task(
                self._drain_claims(), name="journal-drain")
        if released:
            log.warning("released %d reservations of replicas that stopped (liveness key "
                        "expired)", released)
        if not int(was) and self._alive_seen:
            log.warning("this replica was silent for more than %.0f s and taken for dead; "
                        "re-registering its reservations", ALIVE_TTL)
            self._force_beat = True
            await self.beat_once()
        self._alive_seen = True
        if int(named):  # a replica came back from an outage: push and acknowledge
            await self._rejoin(named=True)
        return int(released)

    # -------------------------------------------------------------- the Redis journal

    def attach_ledger(self, drainer: JournalDrainer) -> None:
        """The ledger that writes the journals of dead replicas claimed by this one."""
        self._drainer = drainer

    def journal(self, rid: str, line: bytes, *, progress: bool = False,
                cost: int = 0) -> None:
        """Keep a usage record (or a running stream's progress) in this replica's journal
        hash until its batch commits. Never awaits. A final record rides on its settle
        script when one is pending (no extra round trip); otherwise, when it costs anything
        (a refused request costs nothing: no round trip for it), by its own tracked command,
        which the ledger batch waits for like a settle."""
        if self._out:  # Redis is away: the file journal still has it
            return
        if progress:
            self._side_task(self._jset("p:" + rid, line))
        elif rid in self._settles and rid not in self._jlines:
            self._jlines[rid] = line
        elif rid not in self._settles and cost:
            self._track(rid, self._jset(rid, line))

    def _side_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    async def _jset(self, field: str, line: bytes) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self._redis.hset(f"{self._p}journal:{self._origin}", field, line)

    def _forget_journaled(self, batch: list[UsageRecord]) -> None:
        """The batch committed: one HDEL drops its records and their streams' progress."""
        fields = [r.id for r in batch]
        fields += ["p:" + r.id for r in batch if r.stream]
        if fields:
            self._side_task(self._jdel(fields))

    async def _jdel(self, fields: list[str]) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self._redis.hdel(f"{self._p}journal:{self._origin}", *fields)

    def written_elsewhere(self, rid: str) -> None:
        """The record of ``rid`` was already in the ledger (a live replica wrote it from this
        replica's journal while this one was taken for dead): drop its hold here, which the
        writer's counters already include."""
        res = self._live.pop(rid, None)
        self._held.pop(rid, None)
        if res is not None:
            self._side_task(self._settle_remote(res, 0))

    async def _drain_claims(self) -> None:
        """Write each claimed journal (final records; a stream's last progress when it has
        no final record), then delete it. A failure keeps it for the next beat."""
        assert self._drainer is not None
        for key in sorted(self._claims):
            try:
                entries = await self._redis.hgetall(key)
                final: dict[str, UsageRecord] = {}
                cut: dict[str, UsageRecord] = {}
                for field, line in entries.items():
                    rec, _ = file_journal.parse_entry(line)
                    if rec is None:
                        log.warning("journal %s: skipped an unreadable entry", key)
                    elif _text(field).startswith("p:"):
                        cut[rec.id] = rec
                    else:
                        final[rec.id] = rec
                for rid, rec in cut.items():
                    final.setdefault(rid, rec)
                written = await self._drainer.write_recovered(list(final.values()))
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.delete(key)
                    pipe.srem(f"{self._p}jclaims:{self._origin}", key)
                    await pipe.execute()
            except Exception:
                log.warning("could not write the claimed journal %s; retrying", key,
                            exc_info=True)
                continue
            self._claims.discard(key)
            if written:
                log.warning("wrote %d usage records from the journal of a replica that "
                            "stopped (%s)", written, key)

    async def _alive(self) -> None:
        while True:
            try:
                if self._out:
                    await self._rejoin_shared()
                await self.alive_once()
            except REDIS_ERRORS as exc:
                self._lost(exc)
            except Exception:
                log.warning("liveness beat failed", exc_info=True)
            await asyncio.sleep(ALIVE_EVERY)

    async def _heartbeat(self) -> None:
        """Keep this replica's live reservations alive, and release expired ones."""
        every = self._opt.reservation_ttl / 4
        while True:
            await asyncio.sleep(every)
            try:
                if self._out:  # before the replica count below forgets a silent peer
                    await self._rejoin_shared()
                now = time.time()
                await self.beat_once()
                await self._sweep(keys=[f"{self._p}res", f"{self._p}resd"],
                                  args=[now, self._p])
                await self._count_replicas(now)
                await self._read_known()
                await self._apply_batches()
                fixed = await self._reconcile(
                    keys=[f"{self._p}resd", f"{self._p}sums", f"{self._p}reconcile"],
                    args=[self._p, self._opt.counter_ttl])
                if fixed and fixed > 0:
                    log.warning("healed %d reservation sums in Redis that had drifted", fixed)
                self.redis_ok = True
            except REDIS_ERRORS as exc:
                self._lost(exc)
            except Exception:
                log.warning("reservation heartbeat failed", exc_info=True)

    async def _count_replicas(self, now: float) -> None:
        """Register this replica and count the live ones (the fail-open share is 1/N)."""
        ttl = self._opt.reservation_ttl
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(f"{self._p}replicas", {self._origin: now})
            pipe.zremrangebyscore(f"{self._p}replicas", "-inf", now - ttl)
            pipe.zcard(f"{self._p}replicas")
            self._replicas = max(1, int((await pipe.execute())[2]))

    async def _read_known(self) -> None:
        """Remember what the shared counters say for the keys served here in the last 10
        minutes: the fail-open share starts from it."""
        cutoff = time.monotonic() - 600
        self._touched = {t: at for t, at in self._touched.items() if at > cutoff}
        p, touched = self._p, list(self._touched)
        if not touched:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_id, account_id, day, month in touched:
                pipe.hget(f"{p}ab:{account_id}", "bal")
                pipe.get(f"{p}ar:{account_id}")
                for window in (day, month):
                    pipe.hget(f"{p}ks:{key_id}:{window}", "spent")
                    pipe.get(f"{p}kr:{key_id}:{window}")
            out = await pipe.execute()
        self._known_available, self._known_used = {}, {}
        for i, (key_id, account_id, day, month) in enumerate(touched):
            bal, held, sd, rd, sm, rm = out[6 * i:6 * i + 6]
            if bal is not None:
                self._known_available[account_id] = int(bal) - int(held or 0)
            for window, spent, reserved in ((day, sd, rd), (month, sm, rm)):
                if spent is not None:
                    self._known_used[(key_id, window)] = int(spent) + int(reserved or 0)

    async def _credits(self) -> None:
        """Credits and adjustments written to the ledger by anyone (CLI, admin API) drop the
        account's loaded balance in Redis, which reloads it from the ledger on next use."""
        seen: set[int] = set()
        after = await snapshots.top_transaction(self._engine)
        while True:
            await asyncio.sleep(CREDIT_POLL)
            try:
                for txn_id, account_id, version in await snapshots.credits_since(
                        self._engine, after):
                    if txn_id in seen:
                        continue
                    await self._invalidate(keys=[f"{self._p}av:{account_id}",
                                                 f"{self._p}ab:{account_id}"], args=[version])
                    seen.add(txn_id)
                    after = max(after, txn_id)
                if len(seen) > 10_000:
                    seen = {i for i in seen if i > after - 1000}
            except Exception:
                log.warning("credit poller failed; retrying", exc_info=True)

    async def close(self) -> None:
        if self._rejoin_task is not None:
            self._rejoin_task.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._draining is not None:
            self._draining.cancel()
            await asyncio.gather(self._draining, return_exceptions=True)
        if self._side:
            await asyncio.gather(*self._side, return_exceptions=True)
        pending = list(self._settles.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(*REDIS_ERRORS):
            await self._apply_batches()
        # Release what is still reserved and not settled (normally nothing after the drain).
        for rid, res in list(self._live.items()):
            if rid not in self._held:
                with contextlib.suppress(*REDIS_ERRORS):
                    await self._settle_remote(res, 0)

"""The no-overspend guarantee across replicas: reservations in Redis, the ledger in PostgreSQL.

Same interface as ``MemoryReserver``. ``reserve`` checks the worst case against the wallet and
the key's daily and monthly budgets and records the reservation in one Lua script (see
``redis_scripts``), so N replicas can never together reserve more than there is.

Counters come from the ledger of record. A counter missing in Redis (first use, expiry every
``counter_ttl`` seconds, or Redis lost its data) is loaded from one consistent PostgreSQL
snapshot that carries the wallet ``version``; every ledger batch bumps that version.

No double counting, no undercounting, when a counter is (re)loaded while a replica holds
settled debits not yet written to PostgreSQL:

1. ``settle`` adds the actual cost to the counters that exist and learns their generation
   (a random token per load); the ledger batch waits for its settlements (``before_write``).
2. The batch commits in PostgreSQL and returns the wallet version V it produced.
3. ``after_write``: a counter loaded from a snapshot older than V (ver < V) misses the batch;
   if its generation differs from the one seen at settlement (it was reloaded in between, or
   the settlement failed), the debit is added now. A counter loaded at ver >= V holds it
   already. The account's floor moves to V, and a load whose snapshot is older than the floor
   is refused and read again, so a slow loader cannot bring back a pre-batch balance.

Reservations carry a deadline, refreshed by their replica's heartbeat every ttl/3; a sweep
script (run by every replica) releases those past it, so a killed replica's reservations expire
after ``reservation_ttl``. A killed replica's settled-but-unwritten debits are lost with their
usage records (the ledger stays consistent); Redis counts them until the counter is reloaded
(at most ``counter_ttl``): conservative.

Redis down: ``fail_open=False`` (default) refuses with 503 ``budget_store_unavailable``;
``fail_open=True`` reserves against per-process counters loaded from the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import defaultdict
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from smartoken.auth.keys import KeyContext
from smartoken.budget import redis_scripts as lua
from smartoken.budget.reserver import MemoryReserver, Reservation
from smartoken.budget.windows import Windows
from smartoken.cluster.options import ClusterOptions
from smartoken.errors import BudgetExceeded, BudgetStoreUnavailable, InsufficientBalance
from smartoken.ledger.records import UsageRecord
from smartoken.money import format_usd
from smartoken.store import snapshots

log = logging.getLogger("smartoken.budget")
REDIS_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError,
                redis_errors.BusyLoadingError, OSError)
CREDIT_POLL = 1.0


class RedisReserver:
    def __init__(self, engine: AsyncEngine, windows: Windows, redis: Redis,
                 options: ClusterOptions, origin: str) -> None:
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
        self._beat = redis.register_script(lua.HEARTBEAT)
        self._live: dict[str, Reservation] = {}
        self._settles: dict[str, asyncio.Task[list[str]]] = {}
        self._fallback = MemoryReserver(engine, windows) if options.fail_open else None
        self._fallback_ids: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.in_flight = 0
        self.redis_ok = True

    # -------------------------------------------------------------- keys

    def _keys(self, account_id: int, key_id: int, day: str, month: str) -> list[str]:
        p = self._p
        return [f"{p}ab:{account_id}", f"{p}ar:{account_id}",
                f"{p}ks:{key_id}:{day}", f"{p}kr:{key_id}:{day}",
                f"{p}ks:{key_id}:{month}", f"{p}kr:{key_id}:{month}",
                f"{p}res", f"{p}resd", f"{p}epoch"]

    # -------------------------------------------------------------- the guarantee

    async def reserve(self, key: KeyContext, amount: int,
                      request_id: str = "") -> Reservation:
        ts, day, month = self.windows.now()
        rid = request_id or "res_" + secrets.token_hex(12)
        keys = self._keys(key.account_id, key.key_id, day, month)
        meta = f"{key.account_id}|{key.key_id}|{day}|{month}|{amount}"
        limits = [-1 if key.daily_budget is None else key.daily_budget,
                  -1 if key.monthly_budget is None else key.monthly_budget]
        try:
            for _ in range(6):
                deadline = time.time() + self._opt.reservation_ttl
                verdict, value = await self._run_reserve(
                    keys, [amount, *limits, rid, deadline, meta, time.time(),
                           self._opt.reservation_ttl / 3 + 0.5])
                verdict = verdict.decode() if isinstance(verdict, bytes) else verdict
                if verdict != "load":
                    break
                await self._load_missing(key, day, month,
                                         value.decode() if isinstance(value, bytes) else value)
            else:
                raise BudgetStoreUnavailable("Budget counters could not be loaded; retry.")
        except REDIS_ERRORS as exc:
            self.redis_ok = False
            if self._fallback is None:
                log.warning("redis unreachable, refusing budgeted request: %s", exc)
                raise BudgetStoreUnavailable(
                    "The shared budget store (Redis) is unreachable, so this request's budget "
                    "cannot be checked; it was not sent upstream. Retry shortly.") from None
            return await self._reserve_locally(key, amount, rid)
        self.redis_ok = True
        if verdict == "warming":
            if self._fallback is not None:
                return await self._reserve_locally(key, amount, rid)
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
        res = Reservation(key.key_id, key.account_id, amount, day, month, ts, id=rid)
        self._live[rid] = res
        self.in_flight += 1
        return res

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

    async def _reserve_locally(self, key: KeyContext, amount: int, rid: str) -> Reservation:
        """Fail-open policy: per-process counters loaded from the ledger."""
        assert self._fallback is not None
        res = await self._fallback.reserve(key, amount, rid)
        self._fallback_ids.add(rid)
        self.in_flight += 1
        return res

    async def _load_missing(self, key: KeyContext, day: str, month: str, need: str) -> None:
        p, gen = self._p, secrets.token_hex(6)
        floor = f"{p}av:{key.account_id}"
        ttl = self._opt.counter_ttl
        if "a" in need:
            bal, ver = await snapshots.wallet_counter(self._engine, key.account_id)
            await self._load(keys=[f"{p}ab:{key.account_id}", floor],
                             args=["bal", bal, ver, gen, ttl])
        for flag, window in (("d", day), ("m", month)):
            if flag in need:
                spent, ver = await snapshots.key_window_counter(
                    self._engine, key.account_id, key.key_id, window)
                await self._load(keys=[f"{p}ks:{key.key_id}:{window}", floor],
                                 args=["spent", spent, ver, gen, ttl])

    def settle(self, res: Reservation, actual: int) -> None:
        """Replace the reservation by the actual cost (0 releases it). Idempotent, never
        awaits: the Redis update runs in a task the ledger batch waits for."""
        if res.done:
            return
        res.done = True
        self.in_flight -= 1
        if res.id in self._fallback_ids:
            self._fallback_ids.discard(res.id)
            assert self._fallback is not None
            self._fallback.settle(res, actual)
            return
        self._live.pop(res.id, None)
        task = asyncio.get_running_loop().create_task(self._settle_remote(res, actual))
        self._settles[res.id] = task
        if not actual:  # no usage record will carry a debit: nothing will wait for it
            task.add_done_callback(lambda _t: self._settles.pop(res.id, None))

    async def _settle_remote(self, res: Reservation, actual: int) -> list[str]:
        keys = self._keys(res.account_id, res.key_id, res.day, res.month)
        for attempt in range(3):
            try:
                gens = await self._settle(keys=keys, args=[res.id, actual])
                return [g.decode() if isinstance(g, bytes) else str(g) for g in gens]
            except REDIS_ERRORS:
                self.redis_ok = False
                await asyncio.sleep(0.2 * (attempt + 1))
        # Not applied: the reservation expires by itself; the debit reaches the counters in
        # after_write (their generation differs from '').
        return ["", "", ""]

    def release(self, res: Reservation) -> None:
        self.settle(res, 0)

    def apply_external(self, txns: list[tuple[int, int, int]]) -> None:
        """Credits reach Redis through this reserver's own credit poller (``_credits``)."""

    def forget_key(self, key_id: int) -> None:
        pass

    def snapshot(self, account_id: int) -> tuple[int, int] | None:
        return None

    # -------------------------------------------------------------- ledger hooks

    async def before_write(self, batch: list[UsageRecord]) -> None:
        waits = [t for r in batch if (t := self._settles.get(r.id)) is not None]
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)

    async def in_transaction(self, conn: AsyncConnection, batch: list[UsageRecord]) -> None:
        pass

    async def after_write(self, batch: list[UsageRecord], versions: dict[int, int]) -> None:
        specs: dict[int, dict[str, list[str]]] = defaultdict(dict)
        for r in batch:
            task = self._settles.pop(r.id, None)
            if not r.cost_micro or r.account_id not in versions:
                continue
            gens = ["", "", ""]
            if task is not None and task.done() and not task.cancelled() and \
                    task.exception() is None:
                gens = task.result()
            p = self._p
            targets = ((f"{p}ab:{r.account_id}", "bal;-1"),
                       (f"{p}ks:{r.key_id}:{r.day}", "spent;1"),
                       (f"{p}ks:{r.key_id}:{r.month}", "spent;1"))
            for (counter, head), gen in zip(targets, gens, strict=True):
                entry = specs[r.account_id].setdefault(counter, [head])
                entry.append(f"{gen}={r.cost_micro}")
        for account_id, counters in specs.items():
            keys = [f"{self._p}av:{account_id}", *counters]
            args: list[Any] = [versions[account_id], *(";".join(v) for v in counters.values())]
            await self._after(keys=keys, args=args)

    # -------------------------------------------------------------- background

    async def start(self) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self._redis.set(f"{self._p}epoch", 0, nx=True)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._heartbeat(), name="reservations"),
                       loop.create_task(self._credits(), name="credits")]

    async def _heartbeat(self) -> None:
        """Keep this replica's live reservations alive, and release expired ones."""
        every = self._opt.reservation_ttl / 3
        while True:
            await asyncio.sleep(every)
            try:
                now = time.time()
                ttl = self._opt.reservation_ttl
                args: list[Any] = [self._p, now + ttl, now, ttl / 3 + 0.5, ttl]
                for rid, res in list(self._live.items()):
                    args += [rid, f"{res.account_id}|{res.key_id}|{res.day}|{res.month}|"
                                  f"{res.amount}"]
                restored = await self._beat(
                    keys=[f"{self._p}res", f"{self._p}resd", f"{self._p}epoch"], args=args)
                if restored:
                    log.warning("re-registered %d reservations Redis had lost", restored)
                await self._sweep(keys=[f"{self._p}res", f"{self._p}resd"],
                                  args=[now, self._p])
                self.redis_ok = True
            except REDIS_ERRORS:
                self.redis_ok = False
            except Exception:
                log.warning("reservation heartbeat failed", exc_info=True)

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
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        pending = list(self._settles.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        # Release what is still reserved (requests cut by the shutdown were settled already).
        for res in list(self._live.values()):
            with contextlib.suppress(*REDIS_ERRORS):
                await self._settle_remote(res, 0)

"""Issue 12, item 9: right after Redis returns, fail-open replicas must not use counters that
miss what the outage spent. Three Redis reservers (their real interfaces, no background loops)
share PostgreSQL and Redis; each reaches Redis through its own connection pool that the test
cuts and restores, so every interleaving is forced, not timed:

- replica A spent its share and wrote it to the ledger (its AFTER_BATCH could not run),
- replica B spent its share, settled, not yet written,
- replica C has its share reserved by requests still running,

and then Redis answers again. Before the fix A reserved at once on counters holding none of it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.auth.keys import KeyContext, context_from_row, generate_key
from smartoken.budget import redis_reserver
from smartoken.budget.redis_reserver import RedisReserver
from smartoken.budget.reserver import Reservation
from smartoken.budget.windows import Windows
from smartoken.cluster.options import ClusterOptions
from smartoken.errors import BudgetExceeded, BudgetStoreUnavailable
from smartoken.ledger.records import UsageRecord
from smartoken.ledger.writer import LedgerWriter
from smartoken.store import repo
from smartoken.store.db import make_engine, migrate
from tests.services import REDIS_URL, pg_url, redis_prefix  # noqa: F401  (fixtures)

pytestmark = pytest.mark.scaleout
U = 1_000  # one request's cost, micro-USD
CREDIT = 1_000_000


class CutPool(BlockingConnectionPool):
    """A pool the test can cut: every command then fails as with a refused connection."""
    down = False

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise redis_errors.ConnectionError("cut by the test")
        return await super().get_connection(*args, **kwargs)


class Replica:
    def __init__(self, engine: AsyncEngine, prefix: str, name: str, windows: Windows) -> None:
        self.pool = CutPool.from_url(REDIS_URL, max_connections=16, timeout=5)
        self.redis = Redis(connection_pool=self.pool)
        opts = ClusterOptions(prefix=prefix, reservation_ttl=30.0, fail_open=True)
        self.reserver = RedisReserver(engine, windows, self.redis, opts, name)
        self.ledger = LedgerWriter(engine, name, hooks=self.reserver)

    async def spend(self, key: KeyContext, rid: str, write: bool = True) -> None:
        res = await self.reserver.reserve(key, U, rid)
        self.record(key, res, U)
        if write:
            await self.ledger.flush()

    def record(self, key: KeyContext, res: Reservation, cost: int) -> None:
        self.reserver.settle(res, cost)
        self.ledger.record(UsageRecord(
            id=res.id, created_at=datetime.now(UTC), account_id=key.account_id,
            key_id=key.key_id, requested_model="m", model="m", day=res.day, month=res.month,
            cost_micro=cost))


class Cluster:
    def __init__(self, engine: AsyncEngine, redis: Redis, prefix: str, key: KeyContext) -> None:
        self.engine, self.redis, self.prefix, self.key = engine, redis, prefix, key
        self.windows = Windows(ZoneInfo("UTC"))
        self.a, self.b, self.c = (Replica(engine, prefix, f"gw-{n}", self.windows)
                                  for n in "abc")
        self.all = (self.a, self.b, self.c)

    def cut(self, down: bool) -> None:
        for r in self.all:
            r.pool.down = down
            if not down:
                r.pool.reset()  # (a real outage leaves dead connections; cut ones are fine)

    async def counters(self) -> tuple[int, int]:
        """(spent, reserved) of the key today, as the shared counters say."""
        day = self.windows.now()[1]
        spent = await self.redis.hget(f"{self.prefix}ks:{self.key.key_id}:{day}", "spent")
        held = await self.redis.get(f"{self.prefix}kr:{self.key.key_id}:{day}")
        return int(spent or 0), int(held or 0)

    async def ledger_spent(self) -> int:
        day, month = self.windows.now()[1:]
        return (await repo.key_spend(self.engine, self.key.key_id, day, month))[0]


@pytest.fixture
async def cluster(pg_url: str, redis_prefix: str) -> AsyncIterator[Cluster]:  # noqa: F811
    engine = make_engine(pg_url)
    await migrate(engine)
    aid = await repo.create_account(engine, "acct-" + secrets.token_hex(3))
    await repo.credit_wallet(engine, aid, CREDIT)
    _, prefix, digest = generate_key()
    await repo.insert_key(engine, aid, prefix, digest, repo.KeyFields(daily_budget_micro=30 * U))
    key = context_from_row(await repo.key_by_hash(engine, digest) or {})
    redis = Redis.from_url(REDIS_URL)
    await redis.set(f"{redis_prefix}epoch", 0)
    c = Cluster(engine, redis, redis_prefix, key)
    try:
        yield c
    finally:
        c.cut(False)
        for r in c.all:
            await r.reserver.close()
            await r.redis.aclose()
        await redis.aclose()
        await engine.dispose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _outage(c: Cluster, a_spends: int = 9) -> list[Reservation]:
    """Each replica spends 1 U before the outage, then its share (9 U of the 27 U left) during
    it: A writes its costs, B leaves them unwritten, C's requests are still running."""
    key = c.key
    for r in c.all:
        await r.spend(key, "pre-" + secrets.token_hex(4))
    for _ in range(2):  # every replica heartbeated: each knows there are three
        for r in c.all:
            await r.reserver._count_replicas(time.time())
            await r.reserver._read_known()
    assert all(r.reserver._replicas == 3 for r in c.all)
    assert await c.counters() == (3 * U, 0)
    c.cut(True)
    for i in range(a_spends):
        await c.a.spend(key, f"a-{i}")  # written; AFTER_BATCH fails (Redis is cut)
    if a_spends == 9:
        with pytest.raises(BudgetExceeded):  # A's share is spent
            await c.a.reserver.reserve(key, U, "a-more")
    for i in range(9):
        await c.b.spend(key, f"b-{i}", write=False)
    running = [await c.c.reserver.reserve(key, U, f"c-{i}") for i in range(9)]
    assert await c.ledger_spent() == (3 + a_spends) * U  # A's are written
    c.cut(False)
    return running


@pytest.mark.anyio
async def test_counters_hold_every_replicas_outage_spend_before_anyone_uses_them(
        cluster: Cluster) -> None:
    c, key = cluster, cluster.key
    running = await _outage(c)
    # Redis answers. A pushes its batches and raises the fence: A's next request waits for
    # B and C (their liveness beat names them) instead of reserving on counters missing them.
    first = asyncio.create_task(c.a.reserver.reserve(key, U, "a-after"))
    await asyncio.sleep(0.2)
    assert not first.done()  # before: reserved at once (counters said 3 U + A's 9 U spent)
    assert await c.redis.exists(f"{c.prefix}fence")
    await c.b.reserver.alive_once()  # B registers its 9 settled-unwritten costs, acknowledges
    await asyncio.sleep(0.2)
    assert not first.done()
    await c.c.reserver.alive_once()  # C registers its 9 running reservations, acknowledges
    with pytest.raises(BudgetExceeded):
        await first
    assert not await c.redis.exists(f"{c.prefix}fence")
    assert await c.counters() == (12 * U, 18 * U)  # A's written; B's and C's held
    for r in c.all:
        with pytest.raises(BudgetExceeded):
            await r.reserver.reserve(key, U, "after-" + secrets.token_hex(4))
    # C's requests end through Redis now; B and C write: every cost counted exactly once.
    for res in running:
        c.c.record(key, res, U)
    await c.b.ledger.flush()
    await c.c.ledger.flush()
    assert await c.ledger_spent() == 30 * U
    assert await c.counters() == (30 * U, 0)
    bal = await c.redis.hget(f"{c.prefix}ab:{key.account_id}", "bal")
    assert int(bal) == await repo.wallet_balance(c.engine, key.account_id) == CREDIT - 30 * U
    assert not c.a.reserver._offline and not c.b.reserver._offline
    assert not c.c.reserver._offline


@pytest.mark.anyio
async def test_a_replica_that_never_acknowledges_holds_the_fence_until_it_expires(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    c, key = cluster, cluster.key
    monkeypatch.setattr(redis_reserver, "FENCE_WAIT", 0.3)
    await _outage(c)
    # C was killed during the outage: it never pushes. A waits, then refuses (503), never
    # reserving on counters that miss a peer's spend.
    with pytest.raises(BudgetStoreUnavailable):
        await c.a.reserver.reserve(key, U, "a-after")
    await c.b.reserver.alive_once()
    with pytest.raises(BudgetStoreUnavailable):
        await c.b.reserver.reserve(key, U, "b-after")
    ttl = await c.redis.pttl(f"{c.prefix}fence")
    assert 0 < ttl <= redis_reserver.FENCE_MS
    await c.redis.pexpire(f"{c.prefix}fence", 1)  # FENCE_MS passed
    await asyncio.sleep(0.01)
    with pytest.raises(BudgetExceeded):  # 12 + 9 held of B's: C's 9 running are lost to it
        await c.a.reserver.reserve(key, 10 * U, "a-big")
    res = await c.a.reserver.reserve(key, 9 * U, "a-rest")  # (C's share: the documented limit)
    c.a.reserver.release(res)


@pytest.mark.anyio
async def test_a_share_reservation_overlapping_the_acknowledgement_is_given_back(
        cluster: Cluster) -> None:
    c, key = cluster, cluster.key
    await _outage(c, a_spends=8)
    a = c.a.reserver
    share = a._fallback
    assert share is not None
    real_reserve, real_ack = share.reserve, a._fence_ack
    share_gate, ack_gate, acking = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_reserve(*args: Any, **kw: Any) -> Reservation:
        await share_gate.wait()  # (a share loading its counters from the ledger)
        return await real_reserve(*args, **kw)

    async def slow_ack(**kw: Any) -> Any:
        acking.set()
        await ack_gate.wait()
        return await real_ack(**kw)

    share.reserve = slow_reserve  # type: ignore[method-assign]
    a._fence_ack = slow_ack  # type: ignore[method-assign]
    checked: list[str] = []
    real_check = a._check

    async def spy_check(key: KeyContext, *args: Any) -> Any:
        out = await real_check(key, *args)
        checked.append(out[0])
        return out

    a._check = spy_check  # type: ignore[method-assign]
    # A request of A fails to reach Redis and falls back on A's share (slowly; 1 U left).
    c.a.pool.down = True
    late = asyncio.create_task(a.reserve(key, U, "a-late"))
    await asyncio.sleep(0.05)
    c.a.pool.down = False
    c.a.pool.reset()
    # Redis answers again: B and C push and acknowledge; A pushes, and acknowledges last
    # (its acknowledgement lifts the fence) ...
    rejoin = asyncio.create_task(a._rejoin())
    await acking.wait()
    await c.b.reserver.alive_once()
    await c.c.reserver.alive_once()
    assert await c.redis.smembers(f"{c.prefix}fence") == {b"gw-a"}
    share_gate.set()  # ... while the share reservation completes
    await asyncio.sleep(0.05)
    ack_gate.set()
    assert await rejoin
    # Given back to the share and reserved again on the shared counters (checked there),
    # not kept on the share: spent after the fence lifted, it would be missed by the counters
    # peers already use.
    res = await asyncio.wait_for(late, 10)
    assert checked == ["ok"] and share.in_flight == 0
    assert "a-late" in a._live and "a-late" not in a._offline and not a._out
    assert await c.counters() == (11 * U, 19 * U)
    a.release(res)


@pytest.mark.anyio
async def test_a_busy_pool_is_not_an_outage() -> None:
    """Redis answers and this process is overloaded (no pooled connection free in time): no
    share is spent, so no push and no fence are due; only a real failure starts an outage."""
    from smartoken.cluster.redis_pool import RedisBusy

    redis = Redis.from_url(REDIS_URL)
    opts = ClusterOptions(prefix="st-unused:", fail_open=True)
    reserver = RedisReserver(None, Windows(ZoneInfo("UTC")), redis, opts,  # type: ignore[arg-type]
                             "gw-busy")
    reserver._lost(RedisBusy("all 128 Redis connections stayed in use for 10 s"))
    assert not reserver._out
    reserver._lost(redis_errors.ConnectionError("refused"))
    assert reserver._out
    await redis.aclose()

"""Issue 5: the Redis counters against the ledger of record, race by race.

The Redis reserver and the ledger writer are driven directly (their real interfaces) against
the real PostgreSQL and Redis, so each interleaving of "settle", "counter reloaded" and "ledger
batch committed" can be forced instead of hoped for.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.auth.keys import KeyContext, context_from_row, generate_key
from smartoken.budget.redis_reserver import RedisReserver
from smartoken.budget.windows import Windows
from smartoken.cluster.options import ClusterOptions
from smartoken.errors import BudgetStoreUnavailable, InsufficientBalance
from smartoken.ledger.records import UsageRecord
from smartoken.ledger.writer import LedgerWriter
from smartoken.store import repo, snapshots
from smartoken.store.db import make_engine, migrate
from tests.services import REDIS_URL, pg_url, redis_prefix  # noqa: F401  (fixtures)

pytestmark = pytest.mark.scaleout
CREDIT = 1_000_000


class Rig:
    def __init__(self, engine: AsyncEngine, redis: Redis, prefix: str, key: KeyContext) -> None:
        self.engine, self.redis, self.prefix, self.key = engine, redis, prefix, key
        self.windows = Windows(ZoneInfo("UTC"))
        self.opts = ClusterOptions(prefix=prefix, reservation_ttl=3.0)
        self.reserver = RedisReserver(engine, self.windows, redis, self.opts, "gw-test")
        self.ledger = LedgerWriter(engine, "gw-test", hooks=self.reserver)

    async def redis_balance(self) -> int | None:
        raw = await self.redis.hget(f"{self.prefix}ab:{self.key.account_id}", "bal")
        return None if raw is None else int(raw)

    async def pg_balance(self) -> int:
        return await repo.wallet_balance(self.engine, self.key.account_id)

    async def reserved(self) -> int:
        return int(await self.redis.get(f"{self.prefix}ar:{self.key.account_id}") or 0)

    async def drop_counters(self) -> None:
        """What a counter expiry does (and, for the loaded counters, a FLUSHALL)."""
        keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}ab:*")]
        keys += [k async for k in self.redis.scan_iter(match=f"{self.prefix}ks:*")]
        if keys:
            await self.redis.delete(*keys)

    async def spend(self, rid: str, reserve: int, actual: int) -> UsageRecord:
        """Reserve, settle, wait for the settlement, queue the usage record (not written)."""
        res = await self.reserver.reserve(self.key, reserve, rid)
        self.reserver.settle(res, actual)
        rec = UsageRecord(id=rid, created_at=datetime.now(UTC), account_id=self.key.account_id,
                          key_id=self.key.key_id, requested_model="m", model="m", day=res.day,
                          month=res.month, cost_micro=actual)
        await self.reserver.before_write([rec])
        self.ledger.record(rec)
        return rec


@pytest.fixture
async def rig(pg_url: str, redis_prefix: str) -> AsyncIterator[Rig]:  # noqa: F811
    engine = make_engine(pg_url)
    await migrate(engine)
    aid = await repo.create_account(engine, "acct-" + secrets.token_hex(3))
    await repo.credit_wallet(engine, aid, CREDIT)
    _, prefix, digest = generate_key()
    kid = await repo.insert_key(engine, aid, prefix, digest,
                                repo.KeyFields(daily_budget_micro=CREDIT))
    key = context_from_row(await repo.key_by_hash(engine, digest) or {})
    assert key.key_id == kid
    redis = Redis.from_url(REDIS_URL)
    await redis.set(f"{redis_prefix}epoch", 0)
    r = Rig(engine, redis, redis_prefix, key)
    try:
        yield r
    finally:
        await r.reserver.close()
        await redis.aclose()
        await engine.dispose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def until(read: Callable[[], Awaitable[int]], want: int, seconds: float) -> None:
    for _ in range(int(seconds * 10)):
        if await read() == want:
            return
        await asyncio.sleep(0.1)


async def _reload_quietly(rig: Rig) -> None:
    """Load the counters without reserving (the wallet may have nothing left)."""
    key = rig.key
    day, month = rig.windows.now()[1:]
    await rig.reserver._load_missing(key, day, month, "adm")


async def _reload(rig: Rig) -> None:
    res = await rig.reserver.reserve(rig.key, 1, "probe-" + secrets.token_hex(4))
    rig.reserver.release(res)
    await asyncio.sleep(0.05)


@pytest.mark.anyio
async def test_reload_between_settle_and_commit_is_not_undercounted(rig: Rig) -> None:
    await rig.spend("r1", 1000, 700)
    # Settled but not yet written: the cost is held, the loaded balance untouched.
    assert (await rig.redis_balance(), await rig.reserved()) == (CREDIT, 700)
    await rig.drop_counters()
    await _reload(rig)  # the ledger does not hold the 700 yet; the hold still does
    assert (await rig.redis_balance(), await rig.reserved()) == (CREDIT, 700)
    await rig.ledger.flush()  # the batch commits: the hold moves into the counters
    assert await rig.pg_balance() == CREDIT - 700
    assert (await rig.redis_balance(), await rig.reserved()) == (CREDIT - 700, 0)
    day = rig.windows.now()[1]
    spent = await rig.redis.hget(f"{rig.prefix}ks:{rig.key.key_id}:{day}", "spent")
    assert int(spent) == 700


@pytest.mark.anyio
async def test_no_overspend_while_a_reload_races_an_unwritten_batch(rig: Rig) -> None:
    await rig.spend("r1", CREDIT, CREDIT)  # the whole wallet, settled, not yet written
    await rig.drop_counters()
    await _reload_quietly(rig)  # the ledger still shows the full credit
    with pytest.raises(InsufficientBalance):
        await rig.reserver.reserve(rig.key, 1, "one-more")
    await rig.ledger.flush()
    with pytest.raises(InsufficientBalance):
        await rig.reserver.reserve(rig.key, 1, "still-none")
    assert await rig.pg_balance() == 0


@pytest.mark.anyio
async def test_reload_after_commit_is_not_double_counted(rig: Rig) -> None:
    await rig.spend("r1", 1000, 700)
    await rig.ledger.flush()
    assert (await rig.redis_balance(), await rig.reserved()) == (CREDIT - 700, 0)
    await rig.drop_counters()
    await _reload(rig)
    assert await rig.redis_balance() == CREDIT - 700 == await rig.pg_balance()


@pytest.mark.anyio
async def test_same_counter_is_not_charged_twice_by_the_batch(rig: Rig) -> None:
    await rig.spend("r1", 1000, 700)
    await rig.spend("r2", 1000, 300)
    await rig.ledger.flush()
    assert await rig.redis_balance() == CREDIT - 1000 == await rig.pg_balance()
    assert await rig.reserved() == 0
    # A retry of the same batch (its answer lost) changes nothing.
    await rig.reserver.after_write([], {})
    assert await rig.redis_balance() == CREDIT - 1000


@pytest.mark.anyio
async def test_a_stale_snapshot_cannot_be_loaded_after_a_batch(rig: Rig) -> None:
    await rig.spend("r1", 1000, 700)
    await rig.drop_counters()
    stale = await snapshots.wallet_counter(rig.engine, rig.key.account_id)  # before commit
    await rig.ledger.flush()
    loaded = await rig.reserver._load(
        keys=[f"{rig.prefix}ab:{rig.key.account_id}", f"{rig.prefix}av:{rig.key.account_id}"],
        args=["bal", stale[0], stale[1], "slow", 60])
    assert loaded == 0  # refused: the loader reads the ledger again
    await _reload(rig)
    assert await rig.redis_balance() == CREDIT - 700


@pytest.mark.anyio
async def test_settlement_lost_with_redis_is_applied_by_the_batch(rig: Rig) -> None:
    res = await rig.reserver.reserve(rig.key, 1000, "r1")
    keys = [k async for k in rig.redis.scan_iter(match=f"{rig.prefix}*")]
    await rig.redis.delete(*keys)  # Redis lost everything between reserve and settle
    await rig.redis.set(f"{rig.prefix}epoch", 0)  # (warm-up is tested below)
    rig.reserver.settle(res, 700)
    rec = UsageRecord(id="r1", created_at=datetime.now(UTC), account_id=rig.key.account_id,
                      key_id=rig.key.key_id, requested_model="m", model="m", day=res.day,
                      month=res.month, cost_micro=700)
    rig.ledger.record(rec)
    await _reload(rig)
    await rig.ledger.flush()
    assert await rig.redis_balance() == CREDIT - 700 == await rig.pg_balance()
    assert await rig.reserved() == 0


@pytest.mark.anyio
async def test_a_credit_reloads_the_balance(rig: Rig) -> None:
    await rig.reserver.start()
    await _reload(rig)
    await repo.credit_wallet(rig.engine, rig.key.account_id, 5000)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        await _reload(rig)
        if await rig.redis_balance() == CREDIT + 5000:
            break
        await asyncio.sleep(0.2)
    assert await rig.redis_balance() == CREDIT + 5000


@pytest.mark.anyio
async def test_data_loss_warms_up_and_reregisters_live_reservations(rig: Rig) -> None:
    await rig.reserver.start()
    live = await rig.reserver.reserve(rig.key, 4000, "live")
    assert await rig.reserved() == 4000
    keys = [k async for k in rig.redis.scan_iter(match=f"{rig.prefix}*")]
    await rig.redis.delete(*keys)  # FLUSHALL, for this prefix
    with pytest.raises(BudgetStoreUnavailable):
        await rig.reserver.reserve(rig.key, 1, "during-warm-up")
    deadline = time.monotonic() + 15
    await until(lambda: rig.reserved(), 4000, 15)
    assert await rig.reserved() == 4000  # the heartbeat put the live reservation back
    while time.monotonic() < deadline:
        try:
            res = await rig.reserver.reserve(rig.key, 1, "after-warm-up")
            break
        except BudgetStoreUnavailable:
            await asyncio.sleep(0.2)
    rig.reserver.release(res)
    rig.reserver.release(live)
    await asyncio.sleep(0.2)
    assert await rig.reserved() == 0


@pytest.mark.anyio
async def test_expired_reservations_are_swept(rig: Rig) -> None:
    other = RedisReserver(rig.engine, rig.windows, rig.redis, rig.opts, "gw-dead")
    await other.reserve(rig.key, 2500, "orphan")  # its replica never beats nor settles
    assert await rig.reserved() == 2500
    await rig.reserver.start()
    await until(lambda: rig.reserved(), 0, 20)
    assert await rig.reserved() == 0
    assert await rig.redis.zcard(f"{rig.prefix}res") == 0


@pytest.mark.anyio
async def test_dead_replica_reservations_released_by_a_live_one(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12 item 8: a replica that stops beating (SIGKILL) loses its reservations within
    its liveness TTL, not the reservation TTL; one that was only stalled takes them back."""
    from smartoken.budget import redis_reserver
    monkeypatch.setattr(redis_reserver, "ALIVE_TTL", 0.5)
    dead = rig.reserver
    live = RedisReserver(rig.engine, rig.windows, rig.redis, rig.opts, "gw-live")
    try:
        running = await dead.reserve(rig.key, 1000, "run-1")
        await rig.spend("held-1", 500, 300)  # settled, its ledger batch never written
        assert await rig.reserved() == 1300
        await dead.alive_once()
        assert await live.alive_once() == 0  # the other replica is alive: nothing released
        mine = await live.reserve(rig.key, 40, "live-1")
        await asyncio.sleep(0.7)  # the dead replica's liveness key expires
        assert await live.alive_once() == 2
        assert await rig.reserved() == 40  # the live replica's own reservation stays
        assert await rig.redis.hlen(f"{rig.prefix}resd") == 1
        assert await live.alive_once() == 0  # released once
        # It was only stalled: at its next beat it re-registers what it holds.
        await dead.alive_once()
        assert await rig.reserved() == 1340
        dead.settle(running, 0)
        live.settle(mine, 0)
        await asyncio.sleep(0.1)
        assert await rig.reserved() == 300
    finally:
        await live.close()

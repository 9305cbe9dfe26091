"""Issue 12, item 3: one contract (smartoken/budget/contract.py), the same checks against every
reserver: memory and SQL on SQLite, SQL on PostgreSQL, Redis (with PostgreSQL as the ledger).
Each reserver is driven directly, with a real database, a real Redis and the real ledger writer
(whose hooks move the shared counters)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from smartoken.auth.keys import KeyContext
from smartoken.budget.contract import Reserver
from smartoken.budget.redis_reserver import RedisReserver
from smartoken.budget.reserver import MemoryReserver, Reservation
from smartoken.budget.sql_reserver import SqlReserver
from smartoken.budget.windows import Windows
from smartoken.cluster.options import ClusterOptions
from smartoken.errors import BudgetExceeded, InsufficientBalance
from smartoken.ledger.records import UsageRecord
from smartoken.ledger.writer import LedgerWriter
from smartoken.store import repo
from smartoken.store.db import make_engine, migrate
from tests.reservers import RESERVERS
from tests.services import REDIS_URL, pg_url, redis_prefix  # noqa: F401  (fixtures)

CREDIT = 1_000_000
Body = Callable[[Reserver, LedgerWriter, Any], Awaitable[None]]


def _key(key_id: int, daily: int | None = None, monthly: int | None = None) -> KeyContext:
    return KeyContext(key_id, 1, "a", "user", "sk-st-x", "k", None, daily, monthly, None,
                      None, None, False)


@pytest.fixture(params=RESERVERS)
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Body], None]:
    kind = str(request.param)
    url = (f"sqlite+aiosqlite:///{tmp_path / 'r.db'}" if kind in ("memory", "sql-sqlite")
           else str(request.getfixturevalue("pg_migrated_url")))
    prefix = str(request.getfixturevalue("redis_prefix")) if kind == "redis" else ""

    def go(body: Body) -> None:
        async def main() -> None:
            engine = make_engine(url)
            redis: Redis | None = None
            await migrate(engine)
            aid = await repo.create_account(engine, "a")
            assert aid == 1
            await repo.credit_wallet(engine, aid, CREDIT)
            for _ in range(3):
                await repo.insert_key(engine, aid, secrets.token_hex(4), secrets.token_hex(16),
                                      repo.KeyFields())
            windows = Windows(ZoneInfo("UTC"))
            origin = "test-" + secrets.token_hex(3)
            r: Any
            if kind == "memory":
                r = MemoryReserver(engine, windows, ttl=60)
            elif kind.startswith("sql"):
                r = SqlReserver(engine, windows, origin)
            else:
                redis = Redis.from_url(REDIS_URL)
                r = RedisReserver(engine, windows, redis,
                                  ClusterOptions(prefix=prefix), origin)
            reserver: Reserver = r
            ledger = LedgerWriter(engine, origin, interval=0.05,
                                  hooks=None if kind == "memory" else r)
            await reserver.start()
            ledger.start()
            try:
                await body(reserver, ledger, engine)
            finally:
                await ledger.close()
                await reserver.close()
                if redis is not None:
                    await redis.aclose()
                await engine.dispose()

        asyncio.run(main())

    return go


def _record(r: Reserver, res: Reservation, cost: int) -> UsageRecord:
    charged = r.settle(res, cost)
    return UsageRecord(id=res.id, created_at=datetime.now(UTC), account_id=res.account_id,
                       key_id=res.key_id, requested_model="m", model="m", day=res.day,
                       month=res.month, cost_micro=charged)


async def _release(r: Reserver, res: Reservation) -> None:
    """Release, and wait for a shared reserver's release task to land."""
    r.release(res)
    drain = getattr(r, "_drain_settles", None)
    if drain is not None:
        await drain()


async def _settle_and_write(r: Reserver, ledger: LedgerWriter,
                            pairs: list[tuple[Reservation, int]]) -> None:
    for res, cost in pairs:
        ledger.record(_record(r, res, cost))
    await ledger.flush()


def test_concurrent_reservations_never_pass_the_budget(run: Callable[[Body], None]) -> None:
    async def body(r: Reserver, ledger: LedgerWriter, engine: Any) -> None:
        key = _key(1, daily=10_000)
        got = await asyncio.gather(*(r.reserve(key, 300, f"req_{i}") for i in range(60)),
                                   return_exceptions=True)
        held = [x for x in got if isinstance(x, Reservation)]
        assert len(held) == 33  # 33 x 300 = 9,900 <= 10,000 < 34 x 300
        assert all(isinstance(x, BudgetExceeded) for x in got if not isinstance(x, Reservation))
        assert r.in_flight == 33
        _, day, month = r.windows.now()
        snap = await r.key_snapshot(1, day, month)
        assert snap is None or snap[2] == 9_900
        await _settle_and_write(r, ledger, [(res, 300) for res in held])
        assert r.in_flight == 0
        with pytest.raises(BudgetExceeded):
            await r.reserve(key, 101, "req_over")
        await _settle_and_write(r, ledger, [(await r.reserve(key, 100, "req_last"), 100)])
        snap = await r.key_snapshot(1, day, month)
        assert snap is None or snap == (10_000, 10_000, 0)
        assert await repo.key_spend(engine, 1, day, month) == (10_000, 10_000)
        balance, _ = await repo.wallet_snapshot(engine, 1)
        assert balance == CREDIT - 10_000
        live = await r.snapshot(1)
        assert live is None or live == (CREDIT - 10_000, 0)

    run(body)


def test_wallet_is_shared_by_keys_and_release_frees_it(run: Callable[[Body], None]) -> None:
    async def body(r: Reserver, ledger: LedgerWriter, engine: Any) -> None:
        a = await r.reserve(_key(1), 600_000, "req_a")
        with pytest.raises(InsufficientBalance):
            await r.reserve(_key(2), 400_001, "req_b")
        b = await r.reserve(_key(2), 400_000, "req_b2")
        live = await r.snapshot(1)
        assert live is None or live == (CREDIT, CREDIT)
        await _release(r, a)
        await _release(r, a)  # idempotent
        await _settle_and_write(r, ledger, [(b, 0)])
        await _settle_and_write(r, ledger, [(await r.reserve(_key(3), CREDIT, "req_c"), 1)])
        assert (await repo.wallet_snapshot(engine, 1))[0] == CREDIT - 1

    run(body)


def test_hold_counts_reservations_and_unhold_sees_the_new_balance(
        run: Callable[[Body], None]) -> None:
    async def body(r: Reserver, ledger: LedgerWriter, engine: Any) -> None:
        res = await r.reserve(_key(1), 700_000, "req_a")
        assert not await r.hold(1, 300_001)  # 700,000 reserved: only 300,000 can be held
        assert await r.hold(1, 300_000)
        with pytest.raises(InsufficientBalance):  # the hold is set aside
            await r.reserve(_key(2), 1, "req_b")
        txn, _ = await repo.credit_wallet(engine, 1, -300_000, kind="adjustment")
        await r.unhold(1, 300_000)
        await r.apply_external([(txn, 1, -300_000)])
        await _release(r, res)
        with pytest.raises(InsufficientBalance):  # the adjustment is counted at once
            await r.reserve(_key(2), 700_001, "req_c")
        await _release(r, await r.reserve(_key(2), 700_000, "req_d"))
        txn, _ = await repo.credit_wallet(engine, 1, 5)  # a credit is counted at once too
        await r.apply_external([(txn, 1, 5)])
        await _release(r, await r.reserve(_key(3), 700_005, "req_e"))
        r.forget_key(3)

    run(body)

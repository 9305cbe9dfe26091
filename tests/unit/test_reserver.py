"""MemoryReserver on a real SQLite ledger: exact limits, expiry, credits counted once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from smartoken.auth.keys import KeyContext
from smartoken.budget.reserver import MemoryReserver
from smartoken.budget.windows import Windows
from smartoken.errors import BudgetExceeded, InsufficientBalance
from smartoken.store import repo
from smartoken.store.db import make_engine, migrate


def _key(daily: int | None = None, monthly: int | None = None) -> KeyContext:
    return KeyContext(1, 1, "a", "user", "sk-st-x", "k", None, daily, monthly, None, None,
                      None, False)


def _run(tmp: Path, body: Callable[[Any, MemoryReserver], Awaitable[None]],
         credit: int = 1_000_000) -> None:
    async def main() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp / 'r.db'}")
        try:
            await migrate(engine)
            aid = await repo.create_account(engine, "a")
            assert aid == 1
            await repo.credit_wallet(engine, aid, credit)
            await body(engine, MemoryReserver(engine, Windows(ZoneInfo("UTC")), ttl=60))
        finally:
            await engine.dispose()

    asyncio.run(main())


def test_concurrent_reservations_never_pass_the_budget(tmp_path: Path) -> None:
    async def body(engine: Any, r: MemoryReserver) -> None:
        key = _key(daily=10_000)
        results = await asyncio.gather(*(r.reserve(key, 300) for _ in range(100)),
                                       return_exceptions=True)
        held = [x for x in results if not isinstance(x, BaseException)]
        assert len(held) == 33  # 33 x 300 = 9,900 <= 10,000 < 34 x 300
        assert all(isinstance(x, BudgetExceeded) for x in results if x not in held)
        for res in held:
            r.settle(res, 300)
        assert await r.key_snapshot(1, *r.windows.now()[1:]) == (9_900, 9_900, 0)
        with pytest.raises(BudgetExceeded):
            await r.reserve(key, 101)
        r.settle(await r.reserve(key, 100), 100)
        with pytest.raises(InsufficientBalance):
            await r.reserve(_key(), 1_000_000)

    _run(tmp_path, body)


def test_expired_reservation_is_released_and_a_late_settle_still_counts(tmp_path: Path) -> None:
    async def body(engine: Any, r: MemoryReserver) -> None:
        key = _key(daily=1_000)
        stuck = await r.reserve(key, 1_000)
        with pytest.raises(BudgetExceeded):
            await r.reserve(key, 1)
        assert r.expire(now=stuck.born + 30) == 0  # younger than the ttl: kept
        assert r.expire(now=stuck.born + 61) == 1
        assert r.in_flight == 0 and await r.snapshot(1) == (1_000_000, 0)
        late = await r.reserve(key, 600)
        r.settle(stuck, 400)  # the stuck request did finish: its cost is counted
        r.settle(stuck, 400)  # idempotent
        r.settle(late, 600)
        assert await r.snapshot(1) == (999_000, 0)
        assert await r.key_snapshot(1, *r.windows.now()[1:]) == (1_000, 1_000, 0)

    _run(tmp_path, body)


def test_a_credit_during_the_wallet_load_counts_once(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The race: the load reads its snapshot, a credit commits and is applied, then the load
    installs the wallet. The credit is not in the snapshot, so it must be added, once."""
    read = asyncio.Event()
    go_on = asyncio.Event()
    original = repo.wallet_snapshot

    async def slow_snapshot(engine: Any, account_id: int) -> tuple[int, int]:
        out = await original(engine, account_id)
        read.set()
        await go_on.wait()
        return out

    async def body(engine: Any, r: MemoryReserver) -> None:
        monkeypatch.setattr(repo, "wallet_snapshot", slow_snapshot)
        load = asyncio.ensure_future(r.ensure_wallet(1))
        await read.wait()
        txn, _ = await repo.credit_wallet(engine, 1, 5)
        await r.apply_external([(txn, 1, 5)])  # what the admin API or the poller does
        go_on.set()
        await load
        txn2, _ = await repo.credit_wallet(engine, 1, 7)
        await r.apply_external([(txn2, 1, 7)])
        monkeypatch.setattr(repo, "wallet_snapshot", original)
        balance, _ = await repo.wallet_snapshot(engine, 1)
        assert balance == 1_000_012 and await r.snapshot(1) == (balance, 0)
        # A transaction already in a snapshot is not added again.
        r2 = MemoryReserver(engine, r.windows)
        await r2.ensure_wallet(1)
        await r2.apply_external([(txn, 1, 5), (txn2, 1, 7)])
        assert await r2.snapshot(1) == (balance, 0)

    _run(tmp_path, body)


def test_an_over_count_is_charged_in_full_and_the_next_request_is_refused(
        tmp_path: Path) -> None:
    """Issue 12 item 1: the upstream bills its count, so the ledger charges it in full, also
    where it passes the room left (before, the charge was cut and the operator paid the rest);
    the budget goes over by that one request and the next reservation is refused."""
    async def body(engine: Any, r: MemoryReserver) -> None:
        key = _key(daily=5_000)
        assert r.settle(await r.reserve(key, 100), 1_500) == 1_500
        # 3,500 left; another request holds 3,000 of it: 2,000 is charged though 500 fits.
        held = await r.reserve(key, 3_000)
        assert r.settle(await r.reserve(key, 100), 2_000) == 2_000
        assert await r.snapshot(1) == (1_000_000 - 1_500 - 2_000, 3_000)
        # Under its reservation, a request is charged exactly its actual cost.
        assert r.settle(held, 2_900) == 2_900
        # 1,500 + 2,000 + 2,900 = 6,400 spent: over the 5,000 budget by that request; refused.
        with pytest.raises(BudgetExceeded):
            await r.reserve(key, 1)
        assert await r.snapshot(1) == (1_000_000 - 6_400, 0)

    _run(tmp_path, body)

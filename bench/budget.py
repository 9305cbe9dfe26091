"""CPU cost of reserve + settle per request, with and without budgets, side by side.

    python -m bench.budget [--n 200000] [--e2e 3000]

1. Micro-benchmark: ``MemoryReserver.reserve`` + ``settle`` (and the rpm/tpm buckets) on the
   embedded default (SQLite), counters already loaded, against an empty loop.
2. End to end: the whole chat pipeline in-process (authenticate, validate, count tokens,
   reserve, route, call the demo provider with no delay, settle, record, ledger flush) with
   the reserver replaced by one that reserves nothing, then with the real reserver for a key
   without budgets and for a key with daily and monthly budgets and rpm/tpm limits.

CPU time is ``time.process_time()`` (every thread of the process, including the database
thread), divided by the number of requests. Target: reservation + settlement add at most
200 µs of CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from smartoken.auth.keys import KeyContext, context_from_row, generate_key
from smartoken.budget.ratelimit import RateLimiter
from smartoken.budget.reserver import MemoryReserver, Reservation
from smartoken.budget.windows import Windows
from smartoken.store import repo
from smartoken.store.db import make_engine, migrate

BIG = 10**12  # budgets that the benchmark never reaches
NO_BUDGET = repo.KeyFields(name="plain")
BUDGETS = repo.KeyFields(name="budgets", daily_budget_micro=BIG, monthly_budget_micro=BIG)
LIMITS = repo.KeyFields(name="limits", daily_budget_micro=BIG, monthly_budget_micro=BIG,
                        rpm=10**9, tpm=10**12)


async def _make_key(engine: Any, account_id: int, fields: repo.KeyFields) -> tuple[str,
                                                                                  KeyContext]:
    secret, prefix, digest = generate_key()
    await repo.insert_key(engine, account_id, prefix, digest, fields)
    row = await repo.key_by_hash(engine, digest)
    assert row is not None
    return secret, context_from_row(row)


async def _cpu(step: Callable[[int], Awaitable[None]], n: int, runs: int = 3) -> float:
    """Microseconds of CPU per call of ``step`` (best of ``runs``)."""
    best = float("inf")
    for _ in range(runs):
        for i in range(min(n // 10, 2000)):
            await step(i)
        t0 = time.process_time()
        for i in range(n):
            await step(i)
        best = min(best, (time.process_time() - t0) / n * 1e6)
    return best


async def micro(tmp: Path, n: int) -> list[tuple[str, float]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp / 'micro.db'}")
    try:
        await migrate(engine)
        account = await repo.create_account(engine, "bench")
        await repo.credit_wallet(engine, account, BIG)
        keys = {name: (await _make_key(engine, account, f))[1]
                for name, f in (("plain", NO_BUDGET), ("budgets", BUDGETS), ("limits", LIMITS))}
        reserver = MemoryReserver(engine, Windows(ZoneInfo("UTC")))
        limiter = RateLimiter()

        async def nothing(i: int) -> None:
            return None

        def reserve_settle(key: KeyContext) -> Callable[[int], Awaitable[None]]:
            async def step(i: int) -> None:
                res = await reserver.reserve(key, 1000)
                reserver.settle(res, 700)
            return step

        async def with_limits(i: int) -> None:
            key = keys["limits"]
            limiter.admit(key, 50)
            res = await reserver.reserve(key, 1000)
            reserver.settle(res, 700)
            limiter.charge(key, 100)

        rows = [("empty loop (baseline)", await _cpu(nothing, n))]
        rows.append(("reserve+settle, wallet only (no key budgets)",
                     await _cpu(reserve_settle(keys["plain"]), n)))
        rows.append(("reserve+settle, wallet + daily + monthly budgets",
                     await _cpu(reserve_settle(keys["budgets"]), n)))
        rows.append(("budgets + rpm/tpm admit and charge", await _cpu(with_limits, n)))
        assert reserver.in_flight == 0
        return rows
    finally:
        await engine.dispose()


class NoReserver(MemoryReserver):
    """Reserves nothing: the pipeline without the budget machinery, for comparison."""

    async def reserve(self, key: KeyContext, amount: int) -> Reservation:
        return Reservation(key.key_id, key.account_id, amount, "", "", 0.0)

    def settle(self, res: Reservation, actual: int) -> None:
        res.done = True


async def end_to_end(tmp: Path, n: int) -> list[tuple[str, float]]:
    from smartoken.config import load_settings
    from smartoken.relay import pipeline
    from smartoken.state import app_state

    os.environ["SMARTOKEN_DEMO_DELAY_MS"] = "0"
    settings = load_settings(None, env={}, data_dir=tmp / "e2e")
    body = {"model": "kimi-k2", "max_tokens": 64,
            "messages": [{"role": "user", "content": "Explain the best use case."}]}
    rows: list[tuple[str, float]] = []
    async with contextlib.AsyncExitStack() as stack:
        with contextlib.redirect_stdout(io.StringIO()):  # the first-start banner
            state = await stack.enter_async_context(app_state(settings))
        admin = await repo.get_account(state.engine, name=settings.admin_name)
        assert admin is not None
        await repo.credit_wallet(state.engine, int(admin["id"]), BIG)
        real = state.reserver
        steps: list[tuple[str, Callable[[int], Awaitable[None]]]] = []
        for label, fields, reserver in (
            ("pipeline, no reservation at all", NO_BUDGET, NoReserver(state.engine,
                                                                      state.windows)),
            ("pipeline, reserve+settle, no key budgets", NO_BUDGET, real),
            ("pipeline, reserve+settle, budgets + rpm/tpm", LIMITS, real),
        ):
            secret, _ = await _make_key(state.engine, int(admin["id"]), fields)

            async def step(i: int, auth: str = "Bearer " + secret,
                           reserver: MemoryReserver = reserver) -> None:
                state.reserver = reserver
                key = await state.keys.authenticate(auth)
                call = await pipeline.prepare(state, f"req_{time.monotonic_ns()}_{i}", key,
                                              dict(body))
                await pipeline.complete(state, call)
                if i % 100 == 99:
                    await state.ledger.flush()

            steps.append((label, step))
        # Rounds interleave the variants, so that a neighbour's load hits them alike.
        best = {label: float("inf") for label, _ in steps}
        for _ in range(3):
            for label, run in steps:
                best[label] = min(best[label], await _cpu(run, n, runs=1))
        rows = [(label, best[label]) for label, _ in steps]
        state.reserver = real
    return rows


def _table(title: str, rows: list[tuple[str, float]], base: float) -> str:
    out = [title, f"{'':<52}{'CPU µs/req':>12}{'added':>10}"]
    for label, us in rows:
        out.append(f"{label:<52}{us:>12.2f}{us - base:>+10.2f}")
    return "\n".join(out)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="micro-benchmark iterations")
    parser.add_argument("--e2e", type=int, default=3000, help="end-to-end requests per variant")
    args = parser.parse_args()
    print(f"{platform.node()} · {platform.processor() or platform.machine()} · "
          f"Python {platform.python_version()} · {os.cpu_count()} CPUs · "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    with tempfile.TemporaryDirectory() as d:
        rows = await micro(Path(d), args.n)
        print(_table("Reservation and settlement (MemoryReserver, counters loaded)", rows,
                     rows[0][1]))
        if args.e2e:
            rows = await end_to_end(Path(d), args.e2e)
            print()
            print(_table("Whole chat pipeline in-process (demo provider, no delay)", rows,
                         rows[0][1]))


if __name__ == "__main__":
    asyncio.run(main())

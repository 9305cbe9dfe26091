"""``python -m bench.ledger [--records N] [--db URL]``: how long the ledger's flush holds the
event loop.

The writer flushes batches of ``N`` records (what 250 ms of traffic at N×4 requests/s queues)
to a fresh SQLite database (or ``--db``, e.g. PostgreSQL). Two measures of each flush: the CPU
time of the longest single event-loop callback (``time.thread_time`` around each asyncio
``Handle``: what the loop cannot interrupt, and not inflated by other processes on a busy
machine), and the lateness of a probe task that wakes every 0.1 ms (wall time, which includes
the database thread holding the GIL and the machine's load). Issue 16: no pause over 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from smartoken.ledger.records import UsageRecord
from smartoken.ledger.writer import LedgerWriter
from smartoken.store import repo
from smartoken.store.db import make_engine, migrate


def records(n: int, account_id: int, key_id: int, start: int) -> list[UsageRecord]:
    now = datetime.now(UTC)
    return [UsageRecord(id=f"req-{start + i}", created_at=now, account_id=account_id,
                        key_id=key_id, requested_model="kimi-k2", model="kimi-k2",
                        day=now.strftime("%Y-%m-%d"), month=now.strftime("%Y-%m"),
                        route="kimi-k2:fake/kimi-k2", provider="fake",
                        upstream_model="kimi-k2-upstream", prompt_tokens=12,
                        completion_tokens=40, latency_ms=3, cost_micro=9,
                        attempts='[{"route": "kimi-k2:fake/kimi-k2", "status": 200}]')
            for i in range(n)]


async def probe(stop: asyncio.Event, late: list[float], step: float = 0.0001) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(step)
        late.append(time.perf_counter() - t0 - step)


class CallbackClock:
    """The longest single event-loop callback since ``reset``: its CPU time (``longest``)
    and its wall time (``longest_wall``). Wraps asyncio's ``Handle._run`` (the pure-Python
    loop; uvloop's handles are not seen) until ``restore``."""

    def __init__(self) -> None:
        self.longest = self.longest_wall = 0.0
        self._original = original = asyncio.events.Handle._run
        clock = self

        def timed(handle: asyncio.events.Handle) -> None:
            t0, w0 = time.thread_time(), time.perf_counter()
            original(handle)
            clock.longest = max(clock.longest, time.thread_time() - t0)
            clock.longest_wall = max(clock.longest_wall, time.perf_counter() - w0)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]

    def reset(self) -> None:
        self.longest = self.longest_wall = 0.0

    def restore(self) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]


async def run(url: str, n: int, rounds: int) -> None:
    clock = CallbackClock()
    engine = make_engine(url)
    await migrate(engine)
    account = await repo.create_account(engine, f"bench-{time.time_ns()}", "user")
    await repo.credit_wallet(engine, account, 10**12, reason="bench")
    key_id = 0
    writer = LedgerWriter(engine, "bench", interval=3600)
    pauses, flushes, cpu = [], [], []
    for r in range(rounds):
        for rec in records(n, account, key_id, r * n):
            writer.record(rec)
        late: list[float] = []
        stop = asyncio.Event()
        task = asyncio.create_task(probe(stop, late))
        await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        clock.reset()
        await writer.flush()
        cpu.append(clock.longest)
        flushes.append(time.perf_counter() - t0)
        stop.set()
        await task
        pauses.append(max(late))
    await engine.dispose()
    print("per flush, longest callback (ms CPU):", " ".join(f"{c * 1000:.2f}" for c in cpu))
    print(f"{n} records per flush, {rounds} flushes: longest loop callback "
          f"{max(cpu) * 1000:.2f} ms CPU (median {statistics.median(cpu) * 1000:.2f} ms); "
          f"probe: longest pause "
          f"{max(pauses) * 1000:.2f} ms (median of the per-flush maxima "
          f"{statistics.median(pauses) * 1000:.2f} ms); flush "
          f"{statistics.median(flushes) * 1000:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--db", default=None)
    args = ap.parse_args()
    url = args.db or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'ledger.db'}"
    asyncio.run(run(url, args.records, args.rounds))


if __name__ == "__main__":
    main()

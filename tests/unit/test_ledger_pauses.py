"""Issue 16: a ledger flush never holds the event loop for the whole batch. Preparing a row
costs ~5 µs of loop time; a batch of 1,000 was prepared in one go (~5 ms, seen in p99), now in
slices of ``bulk.SLICE`` with the loop let in between. Rows are made slow here so the
difference does not depend on the machine's speed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from bench.ledger import CallbackClock, records
from smartoken.ledger import writer as writer_mod
from smartoken.ledger.writer import LedgerWriter
from smartoken.store import repo
from smartoken.store.db import make_engine, migrate

ROW_COST = 0.00005  # seconds of loop time per row, on purpose


def test_a_batch_is_prepared_in_slices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow_values = writer_mod._usage_values

    def slow(rec: Any) -> Any:
        time.sleep(ROW_COST)
        return slow_values(rec)

    monkeypatch.setattr(writer_mod, "_usage_values", slow)

    async def main() -> float:
        clock = CallbackClock()
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}")
        try:
            await migrate(engine)
            account = await repo.create_account(engine, "pauses", "user")
            writer = LedgerWriter(engine, "test", interval=3600)
            for rec in records(1000, account, 0, 0):
                writer.record(rec)
            clock.reset()
            t0 = time.perf_counter()
            await writer.flush()
            assert writer.pending == 0 and writer.written == 1000
            assert time.perf_counter() - t0 > 1000 * ROW_COST
            return clock.longest_wall
        finally:
            clock.restore()
            await engine.dispose()

    t0 = time.perf_counter()
    for _ in range(100):
        time.sleep(ROW_COST)
    per_row = (time.perf_counter() - t0) / 100  # a sleep overshoots: what a row really costs
    longest = asyncio.run(main())
    # a slice of rows, not the batch (it was all 1,000 in one callback: >= 1,000 x per_row)
    assert longest < 1000 * per_row / 3, f"{longest * 1000:.1f} ms, row {per_row * 1e6:.0f} µs"

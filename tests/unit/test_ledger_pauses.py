"""Issue 16: a ledger flush never holds the event loop for the whole batch. Preparing a row
costs ~5 µs of loop time; a batch of 1,000 was prepared in one go (~5 ms, seen in p99), now in
slices of ``bulk.SLICE`` with the loop let in between. Counted in rows prepared per turn of the
event loop, not in wall time, so the answer does not depend on how loaded the machine is."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.ledger import records
from smartoken.ledger import writer as writer_mod
from smartoken.ledger.writer import LedgerWriter
from smartoken.store import repo
from smartoken.store.bulk import SLICE
from smartoken.store.db import make_engine, migrate


@pytest.mark.serial  # alone, after the parallel part of `make test` (Makefile)
def test_a_batch_is_prepared_in_slices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    turn = [0]  # bumped by a task that runs once per turn of the event loop
    rows_per_turn: Counter[int] = Counter()
    real_values = writer_mod._usage_values

    def counted(rec: Any) -> Any:
        rows_per_turn[turn[0]] += 1
        return real_values(rec)

    monkeypatch.setattr(writer_mod, "_usage_values", counted)

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0)
            turn[0] += 1

    async def main() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}")
        ticking = asyncio.create_task(ticker())
        try:
            await migrate(engine)
            account = await repo.create_account(engine, "pauses", "user")
            writer = LedgerWriter(engine, "test", interval=3600)
            for rec in records(1000, account, 0, 0):
                writer.record(rec)
            rows_per_turn.clear()
            await writer.flush()
            assert writer.pending == 0 and writer.written == 1000
        finally:
            ticking.cancel()
            await engine.dispose()

    asyncio.run(main())
    assert sum(rows_per_turn.values()) == 1000
    # a slice of rows per turn, not the batch (it was all 1,000 in one turn)
    assert max(rows_per_turn.values()) <= SLICE < 1000 / 3, rows_per_turn.most_common(3)

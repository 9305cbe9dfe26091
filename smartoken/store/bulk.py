"""Many-row INSERTs straight to the database driver, for the ledger's batches.

SQLAlchemy Core's executemany processes every row in Python (a parameter dict per row, type
coercion, cache keys): ~30 µs a ledger record, spent on the event loop, so a batch of a few
hundred records held it for several milliseconds (seen in the benchmark's p99 latency). Here the
INSERT is compiled once per dialect, rows are tuples, and only the columns whose type needs a
bind processor on that dialect (SQLite's DateTime and Boolean) are converted, a slice of rows at
a time with the event loop let in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

Processor = Callable[[Any], Any]
# Rows converted between two yields to the event loop: ~5 µs each, so a slice holds the loop
# ~0.5 ms where a batch of 1,000 held it ~5 ms (bench/ledger.py; issue 16: pauses <= 2 ms).
SLICE = 100


class BulkInsert:
    """``await BulkInsert(table, columns).run(conn, rows)``: rows are tuples in ``columns``
    order, which must be the table's column order (the order SQLAlchemy writes the INSERT in)."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self._plans: dict[tuple[str, str], tuple[str, list[tuple[int, Processor]]]] = {}

    def _plan(self, dialect: Dialect) -> tuple[str, list[tuple[int, Processor]]]:
        """(SQL, the bind processors by parameter position)."""
        compiled = insert(self.table).values(
            {c: bindparam(c) for c in self.columns}).compile(dialect=dialect)
        if not compiled.positional:
            raise NotImplementedError(f"bulk insert needs a positional paramstyle, "
                                      f"not {dialect.paramstyle}")
        if tuple(compiled.positiontup or ()) != self.columns:
            raise ValueError(f"columns must be in {self.table.name}'s column order: "
                             f"{compiled.positiontup}")
        procs: list[tuple[int, Processor]] = [
            (pos, proc) for pos, n in enumerate(self.columns)
            if (proc := self.table.c[n].type.dialect_impl(dialect).bind_processor(dialect))]
        return str(compiled), procs

    async def run(self, conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        dialect = conn.dialect
        plan_key = (dialect.name, dialect.driver)
        plan = self._plans.get(plan_key)
        if plan is None:
            plan = self._plans[plan_key] = self._plan(dialect)
        sql, procs = plan
        if procs:
            out = []
            for start in range(0, len(rows), SLICE):
                if start:
                    await asyncio.sleep(0)  # let requests run between slices
                for row in rows[start:start + SLICE]:
                    values = list(row)
                    for pos, proc in procs:
                        values[pos] = proc(values[pos])
                    out.append(tuple(values))
            rows = out
        await conn.exec_driver_sql(sql, list(rows))

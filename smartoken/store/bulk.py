"""Many-row INSERTs straight to the database driver, for the ledger's batches.

SQLAlchemy Core's executemany processes every row in Python (a parameter dict per row, type
coercion, cache keys): ~30 µs a ledger record, spent on the event loop, so a batch of a few
hundred records held it for several milliseconds (seen in the benchmark's p99 latency). Here the
INSERT is compiled once per dialect, rows are tuples, and only the columns whose type needs a
bind processor on that dialect (SQLite's DateTime and Boolean) are converted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

Processor = Callable[[Any], Any]


class BulkInsert:
    """``await BulkInsert(table, columns).run(conn, rows)``: rows are tuples in ``columns``
    order."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self._plans: dict[tuple[str, str], tuple[str, list[int] | None,
                                                  list[tuple[int, Processor]]]] = {}

    def _plan(self, dialect: Dialect) -> tuple[str, list[int] | None,
                                               list[tuple[int, Processor]]]:
        """(SQL, where each statement parameter comes from in a row (None: the same order),
        the bind processors by statement position)."""
        compiled = insert(self.table).values(
            {c: bindparam(c) for c in self.columns}).compile(dialect=dialect)
        names = list(compiled.positiontup or ()) if compiled.positional else []
        if sorted(names) != sorted(self.columns):
            raise NotImplementedError(f"bulk insert needs a positional paramstyle, "
                                      f"not {dialect.paramstyle}")
        order = [self.columns.index(n) for n in names]
        procs = [(pos, proc) for pos, n in enumerate(names)
                 if (proc := self.table.c[n].type.dialect_impl(dialect).bind_processor(dialect))]
        return str(compiled), None if order == list(range(len(order))) else order, procs

    async def run(self, conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        dialect = conn.dialect
        plan_key = (dialect.name, dialect.driver)
        plan = self._plans.get(plan_key)
        if plan is None:
            plan = self._plans[plan_key] = self._plan(dialect)
        sql, order, procs = plan
        if order is not None:
            rows = [tuple(row[i] for i in order) for row in rows]
        if procs:
            out = []
            for row in rows:
                values = list(row)
                for pos, proc in procs:
                    values[pos] = proc(values[pos])
                out.append(tuple(values))
            rows = out
        await conn.exec_driver_sql(sql, list(rows))

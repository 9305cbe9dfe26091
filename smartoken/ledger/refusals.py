"""Requests refused before routing (bad key, budget, wallet, unknown model, bad body): they
leave no usage record, so the console lists them from this log instead, without a cost.

Best effort and bounded: each refusal is written by a background task; at most
``MAX_PENDING`` writes are in flight per process and at most ``PER_SECOND`` refusals a second
are kept, so a flood of bad requests cannot load the database (the rest are counted in the
metrics and logs only)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.store.schema import refused_requests

log = logging.getLogger("smartoken")
MAX_PENDING = 100
PER_SECOND = 50
_tasks: set[asyncio.Task[None]] = set()
_window = [0.0, 0]  # second, count


def _admit() -> bool:
    now = int(time.monotonic())
    if _window[0] != now:
        _window[0], _window[1] = now, 0
    _window[1] += 1
    return _window[1] <= PER_SECOND and len(_tasks) < MAX_PENDING


def note(engine: AsyncEngine, row: dict[str, Any]) -> None:
    """Schedule the write of one refusal (``id``, ``account_id``, ``key_id``, ``model``,
    ``path``, ``http_status``, ``code``, ``message``)."""
    if not _admit():
        return
    row = {**row, "created_at": datetime.now(UTC), "message": str(row["message"])[:500],
           "model": (row.get("model") or None) and str(row["model"])[:200],
           "path": str(row["path"])[:200]}

    async def write() -> None:
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(refused_requests).values(**row))
        except Exception:  # a log of refusals must never fail a request
            log.warning("refused request %s not logged", row.get("id"), exc_info=True)

    task = asyncio.get_running_loop().create_task(write())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def drain() -> None:
    """Wait for the writes in flight (tests, shutdown)."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)


async def recent(engine: AsyncEngine, account_id: int | None, limit: int = 50,
                 offset: int = 0) -> list[dict[str, Any]]:
    r = refused_requests.c
    q = select(refused_requests).order_by(r.created_at.desc()).limit(limit).offset(offset)
    if account_id is not None:
        q = q.where(r.account_id == account_id)
    async with engine.connect() as conn:
        return [dict(x) for x in (await conn.execute(q)).mappings().all()]

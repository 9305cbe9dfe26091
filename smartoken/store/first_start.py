"""First-start work (migrations, the admin account, stored secrets) from N processes at once.

``serve --workers N`` and replicas started together all find a fresh database. Each process
runs its first-start steps inside ``first_start_lock``: a session-level advisory lock on
PostgreSQL, an exclusive ``flock`` on ``<database file>.init.lock`` on SQLite. The first
process migrates and creates the admin account; the others wait, then find the work done.
The inserts are idempotent as well (a unique-key race is a ``Conflict``, not a crash), so a
database without the lock (another engine) still starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# pg_advisory_lock key: any constant 64-bit number of our own ('SmarTok' as digits)
LOCK_KEY = 0x536D6172546F6B


def _sqlite_path(engine: AsyncEngine) -> Path | None:
    db = engine.url.database
    if engine.dialect.name != "sqlite" or not db or db == ":memory:":
        return None
    return Path(db)


@contextlib.asynccontextmanager
async def first_start_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the database's first-start lock: one process at a time runs what is inside."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            await conn.commit()
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                    await conn.commit()
        return
    path = _sqlite_path(engine)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.init.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock

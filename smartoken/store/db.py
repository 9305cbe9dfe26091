"""Engine creation and migrations (Alembic, run programmatically).

Alembic (with Mako and Pygments, ~11 MiB of RSS) is imported only when the database is not at
``HEAD``: a gateway restarted on a migrated database never loads it (issue 16)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision; tests/unit/test_lean_imports.py holds it to Alembic's head.
HEAD = "0025_payments"


class SchemaOutOfDate(RuntimeError):
    pass


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(conn: Connection) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def _current(conn: Connection) -> str | None:
    """The database's revision (None before the first migration), read without Alembic."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade to the head, one process at a time (several workers or replicas may start
    together on a fresh database: store/first_start.py). A database at ``HEAD`` is left
    alone without loading Alembic."""
    from smartoken.store.first_start import first_start_lock

    if await current_revision(engine) == HEAD:
        return
    async with first_start_lock(engine), engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def check_schema(engine: AsyncEngine) -> None:
    """Refuse to run against a database whose schema is older (or newer) than this program."""
    current, head = await current_revision(engine), HEAD
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at revision {current or 'none'}, this program needs {head}: "
            "run `smartoken migrate` (or start with --migrate)"
        )

"""Migrations form one chain, and the migrated schema is exactly store/schema.py."""

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from smartoken.store.db import alembic_config, make_engine, migrate
from smartoken.store.schema import metadata


def test_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, heads


def test_migrated_schema_matches_the_tables(tmp_path: Path) -> None:
    async def diff() -> list[object]:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
        try:
            await migrate(engine)
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), metadata))
        finally:
            await engine.dispose()

    assert asyncio.run(diff()) == []

"""What a worker does not load unless it needs it (issue 16, RSS per worker): Alembic on a
database at ``store.db.HEAD`` (~11 MiB), stripe without Stripe configured (~8 MiB), redis-py
without Redis (~8 MiB). And ``HEAD`` names Alembic's head."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from smartoken.store.db import HEAD, alembic_config, check_schema, make_engine, migrate


def test_head_constant_is_alembics_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD


def test_restart_on_a_migrated_database_loads_no_optional_library(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"

    async def first() -> None:
        engine = make_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(first())
    probe = (
        "import asyncio, sys\n"
        "from smartoken.store.db import make_engine, migrate, check_schema\n"
        "async def go():\n"
        f"    e = make_engine({url!r})\n"
        "    await migrate(e); await check_schema(e); await e.dispose()\n"
        "asyncio.run(go())\n"
        "import smartoken.app\n"
        "optional = ('alembic', 'mako', 'stripe', 'requests', 'redis')\n"
        "print(sorted(m for m in optional if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_check_schema_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite'}")

    async def go() -> str:
        try:
            await check_schema(engine)
        except Exception as exc:  # SchemaOutOfDate
            return str(exc)
        finally:
            await engine.dispose()
        return ""

    assert "revision none" in asyncio.run(go())

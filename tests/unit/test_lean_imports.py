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


def test_a_relaying_gateway_loads_neither_jinja_nor_cryptography(tmp_path: Path) -> None:
    """The console's templates (Jinja, ~2 MiB) and formats (Babel, ~1 MiB), Fernet
    (cryptography, ~8 MiB), the SMTP client and the extraction pool's process machinery
    (~1 MiB) are loaded by the first console page, secret, mail and file, not by a gateway that
    starts and relays."""
    probe = (
        "import sys\n"
        "from starlette.testclient import TestClient\n"
        "from smartoken.app import create_app\n"
        "from smartoken.config import load_settings\n"
        f"s = load_settings(None, env={{}}, data_dir={str(tmp_path)!r})\n"
        "with TestClient(create_app(s)) as c:\n"
        "    assert c.get('/healthz').status_code == 200\n"
        "    msg = {'role': 'user', 'content': 'hi'}\n"
        "    r = c.post('/v1/chat/completions', headers={'authorization': 'Bearer sk-no'},\n"
        "               json={'model': 'kimi-k2', 'messages': [msg]})\n"
        "    assert r.status_code == 401, r.text\n"
        "    lazy = ('cryptography', 'jinja2', 'aiosmtplib', 'multiprocessing', 'babel')\n"
        "    print(sorted(m for m in lazy if m in sys.modules))\n"
        "    page = c.get('/console/login')\n"
        "    assert page.status_code == 200 and '<form' in page.text, page.text[:300]\n"
        "    print(sorted(m for m in lazy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    before, after = out.stdout.strip().splitlines()[-2:]
    assert before == "[]", out.stdout + out.stderr
    assert "jinja2" in after  # the first page loads it: the probe sees what it claims to


def test_console_templates_are_made_once_per_supported_locale() -> None:
    """Made on first use, one environment per supported locale, whatever a caller asks for."""
    from typing import Any, cast
    from zoneinfo import ZoneInfo

    from smartoken.console.http import Console
    from smartoken.i18n import locales

    console = Console(cast(Any, None), ZoneInfo("UTC"), cast(Any, None))
    en = console.templates("en")
    assert console.templates("en") is en
    assert console.templates("xx-evil") is en and console.templates("zh_CN") is not en
    assert sorted(console._templates) == sorted(locales.SUPPORTED)

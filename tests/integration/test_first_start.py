"""Issue 12 item 16: the first start of several workers on a fresh PostgreSQL database.

The workers raced to create the ``admin`` account: one hit the unique key and uvicorn shut the
whole server down. A real ``smartoken serve --workers 3`` on a database created for each try,
five times.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import httpx
import pytest

from tests.harness import Gateway
from tests.services import PG_HOST, PG_PORT, PG_USER, _admin, pg_available, pg_url  # noqa: F401

pytestmark = pytest.mark.scaleout
WORKERS = 3


def _started(gw: Gateway, timeout: float = 60) -> None:
    """Every worker finished its start-up, and the server is still running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert gw.proc is not None and gw.proc.poll() is None, gw.log()
        if gw.log().count("Application startup complete") >= WORKERS:
            return
        time.sleep(0.1)
    raise AssertionError(f"workers did not all start:\n{gw.log()}")


@pytest.mark.parametrize("attempt", range(5))
def test_three_workers_start_on_a_fresh_postgresql(tmp_path: Path, attempt: int) -> None:
    if not pg_available():
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (run scripts/services.sh)")
    name = "st_first_" + secrets.token_hex(5)
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    url = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    gw = Gateway(tmp_path, env={"SMARTOKEN_DATABASE_URL": url}, workers=WORKERS,
                 log_level="info")
    try:
        gw.start(timeout=90)
        _started(gw)
        assert httpx.get(gw.base_url + "/readyz", timeout=5).status_code == 200
        admins = gw.sql("SELECT id FROM accounts WHERE name = 'admin'")
        assert len(admins) == 1
        credits = gw.sql("SELECT amount_micro FROM wallet_transactions WHERE account_id = :a",
                         a=admins[0]["id"])
        assert credits == [{"amount_micro": 100_000_000}]  # the first-start credit, once
        assert gw.log().count("SmarToken first start: admin account") == 1
        assert gw.stop() == 0
    finally:
        gw.stop()
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _first_start_together(url: str, n: int) -> list[str | None]:
    """``n`` processes' first-start steps at once: each its own engine (connection pool)."""
    from smartoken.config import load_settings
    from smartoken.state import bootstrap_admin
    from smartoken.store.db import make_engine, migrate

    settings = load_settings(None, env={})
    engines = [make_engine(url) for _ in range(n)]
    try:
        await asyncio.gather(*(migrate(e) for e in engines))
        return list(await asyncio.gather(*(bootstrap_admin(e, settings) for e in engines)))
    finally:
        for e in engines:
            await e.dispose()


def test_first_start_steps_run_once_when_raced(pg_url: str) -> None:  # noqa: F811
    """Eight processes' migrations and admin bootstrap at the same instant on a fresh
    database (before: a unique-key violation escaped from all but one)."""
    passwords = asyncio.run(_first_start_together(pg_url, 8))
    assert sum(p is not None for p in passwords) == 1
    gw = Gateway(Path("/nonexistent"), env={"SMARTOKEN_DATABASE_URL": pg_url})
    [admin] = gw.sql("SELECT id FROM accounts WHERE name = 'admin'")
    assert gw.sql("SELECT amount_micro FROM wallet_transactions WHERE account_id = :a",
                  a=admin["id"]) == [{"amount_micro": 100_000_000}]

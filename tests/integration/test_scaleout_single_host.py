"""Issue 5 on one host: several workers without Redis never overspend (SQLite and
PostgreSQL), and starting against an older schema says so clearly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import ROOT, Gateway, fake_config
from tests.scaleout_support import (
    TTL,
    assert_ledger_consistent,
    codes,
    exact_usage,
    ok,
    spread,
    wait_for,
)
from tests.services import pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.scaleout


# ---------------------------------------------------------------------------- without Redis


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_workers_without_redis_never_overspend(tmp_path: Path, fake: FakeUpstream,
                                               backend: str, request: Any) -> None:
    env = {"SMARTOKEN_RESERVATION_TTL": TTL}
    if backend == "postgresql":
        env["SMARTOKEN_DATABASE_URL"] = request.getfixturevalue("pg_url")
    cost = exact_usage(fake)
    gw = Gateway(tmp_path, fake_config(fake), env, workers=2).start()
    try:
        key = gw.key("team", credit="100", daily_budget_micro=40 * cost)
        aid = gw.account("team")
        results = spread([gw], key, 120)
        assert len(ok(results)) == 40, codes(results)
        assert codes(results).get("429:budget_exceeded", 0) == 80
        gw.wait_usage(40, timeout=30, status="ok")
        assert assert_ledger_consistent(gw, aid, 100_000_000) == 40 * cost
        wait_for(lambda: not gw.sql("SELECT id FROM reservations"), 10,
                 "the reservations table to empty")
    finally:
        gw.stop()


# ---------------------------------------------------------------------------- schema


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_serve_refuses_an_old_schema_clearly(tmp_path: Path, backend: str,
                                             request: Any) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    from smartoken.store.db import alembic_config, make_engine

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()

    url = request.getfixturevalue("pg_url") if backend == "postgresql" else \
        f"sqlite+aiosqlite:///{tmp_path / 'data' / 'smartoken.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTOKEN_")}
    env.update({"SMARTOKEN_DATABASE_URL": url, "PYTHONPATH": str(ROOT)})
    serve = [sys.executable, "-m", "smartoken", "--data-dir", str(tmp_path / "data"), "serve",
             "--port", "1", "--no-migrate"]

    out = subprocess.run(serve, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"schema is at revision none, this program needs {head}" in out.stderr
    assert "smartoken migrate" in out.stderr and "Traceback" not in out.stderr

    async def to_0001() -> None:
        engine = make_engine(url)

        def up(conn: Any) -> None:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")

        async with engine.begin() as conn:
            await conn.run_sync(up)
        await engine.dispose()

    asyncio.run(to_0001())
    out = subprocess.run(serve, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and f"at revision 0001, this program needs {head}" \
        in out.stderr

    migrated = subprocess.run([sys.executable, "-m", "smartoken", "--data-dir",
                               str(tmp_path / "data"), "migrate"], env=env,
                              capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    (tmp_path / "gw").mkdir()
    gw = Gateway(tmp_path / "gw", None, {"SMARTOKEN_DATABASE_URL": url}).start()
    try:
        [rev] = gw.sql("SELECT version_num FROM alembic_version")
        assert rev["version_num"] == head
        assert gw.sql("SELECT version FROM wallets") != []  # the admin wallet, versioned
    finally:
        gw.stop()

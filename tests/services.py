"""Real PostgreSQL and Redis for the scale-out tests: a fresh database per test, a private Redis
key prefix per test, and private redis-server processes that a test may stop and restart.

PostgreSQL: 127.0.0.1:5432, trust auth (``PGUSER`` or postgres); Redis: 127.0.0.1:6379. Both are
started by scripts/services.sh (``.ci/run``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from smartoken.store.db import MIGRATIONS, make_engine, migrate
from tests.harness import held_port
from tests.running import stop_gateways

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_USER = os.environ.get("PGUSER", "postgres")
REDIS_URL = os.environ.get("SMARTOKEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEMPLATE_LOCK = 0x5354_54504C  # pg_advisory_lock key of the template's making ('ST' 'TPL')


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="test",
                                 timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_available() -> bool:
    try:
        asyncio.run(_admin("SELECT 1"))
        return True
    except Exception:
        return False


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except Exception:
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    if not pg_available():
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (run scripts/services.sh)")
    name = "st_" + secrets.token_hex(6)
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        stop_gateways()
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _migrations_digest() -> str:
    """What the migrations are: a template made from other migrations is never reused."""
    h = hashlib.sha256()
    for path in sorted(MIGRATIONS.rglob("*.py")):
        h.update(path.relative_to(MIGRATIONS).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


_template: str | None = None


def _migrated_template() -> str:
    """A database migrated to the head once, which ``pg_migrated_url`` copies (CREATE DATABASE
    ... TEMPLATE: ~0.1 s instead of ~1-3 s of migrations per test). Made once per set of
    migrations, under an advisory lock: the processes of one run (pytest-xdist workers) and
    other runs of the same checkout share it; built under a temporary name and renamed when
    complete, so that a run killed half-way leaves no half-migrated template behind."""
    global _template
    if _template is not None:
        return _template
    name = f"st_tpl_{_migrations_digest()}"

    async def make() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER,
                                     database="test", timeout=10)
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", TEMPLATE_LOCK)
            try:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1",
                                           name):
                    tmp = "st_tmp_" + secrets.token_hex(6)
                    await conn.execute(f"CREATE DATABASE {tmp}")
                    engine = make_engine(f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{tmp}")
                    try:
                        await migrate(engine)
                    finally:
                        await engine.dispose()
                    await conn.execute(f"ALTER DATABASE {tmp} RENAME TO {name}")
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", TEMPLATE_LOCK)
        finally:
            await conn.close()

    asyncio.run(make())
    _template = name
    return name


@pytest.fixture
def pg_migrated_url() -> Iterator[str]:
    """Like ``pg_url``, already migrated to the head (a copy of a template database): for the
    tests that start gateways on PostgreSQL, not for those about migrating a fresh database."""
    if not pg_available():
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (run scripts/services.sh)")
    template = _migrated_template()
    name = "st_" + secrets.token_hex(6)
    asyncio.run(_admin(f"CREATE DATABASE {name} TEMPLATE {template}"))
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        stop_gateways()
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A private key prefix on the shared Redis, its keys deleted afterwards."""
    if not redis_available():
        pytest.fail("Redis is not running on 127.0.0.1:6379 (run scripts/services.sh)")
    prefix = f"sttest:{secrets.token_hex(6)}:"
    yield prefix
    stop_gateways()
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(match=prefix + "*", count=1000))
    if keys:
        r.delete(*keys)
    r.close()


class RedisServer:
    """A private redis-server on its own port (never the shared 6379), stoppable at will."""

    def __init__(self, tmp: Path) -> None:
        self.port = held_port(self)  # kept while it is stopped and restarted
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed (run scripts/services.sh)")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()

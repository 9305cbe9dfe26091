"""Real PostgreSQL and Redis for the scale-out tests: a fresh database per test, a private Redis
key prefix per test, and private redis-server processes that a test may stop and restart.

PostgreSQL: 127.0.0.1:5432, trust auth (``PGUSER`` or postgres); Redis: 127.0.0.1:6379. Both are
started by scripts/services.sh (``.ci/run``)."""

from __future__ import annotations

import asyncio
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

from tests.harness import free_port

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_USER = os.environ.get("PGUSER", "postgres")
REDIS_URL = os.environ.get("SMARTOKEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A private key prefix on the shared Redis, its keys deleted afterwards."""
    if not redis_available():
        pytest.fail("Redis is not running on 127.0.0.1:6379 (run scripts/services.sh)")
    prefix = f"sttest:{secrets.token_hex(6)}:"
    yield prefix
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(match=prefix + "*", count=1000))
    if keys:
        r.delete(*keys)
    r.close()


class RedisServer:
    """A private redis-server on its own port (never the shared 6379), stoppable at will."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
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

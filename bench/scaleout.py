"""Scale-out benchmark: gateway throughput with 1 vs 2 workers, and the per-request cost of the
shared (Redis + PostgreSQL) path against the embedded default (SQLite, in-process reserver).

    python -m bench.scaleout [--seconds 8] [--connections 32] [--only NAME ...]

Each configuration starts a real ``smartoken serve`` process in front of the fake upstream
(``python -m tests.fakes.upstream``, answering at once) and drives non-streaming chat
completions through it with wrk (or an aiohttp loop when wrk is missing): once at
``--connections`` for throughput, once with one connection for the latency of one request.
PostgreSQL and Redis configurations use a fresh database and a private Redis key prefix.
Everything runs on this machine, load generator included, so the numbers are relative.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
BODY = {"model": "kimi-k2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
PG_ADMIN = {"host": "127.0.0.1", "port": 5432, "user": os.environ.get("PGUSER", "postgres"),
            "database": "test"}
REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Setup:
    name: str
    workers: int
    database: str  # sqlite | postgresql
    redis: bool


SETUPS = [
    Setup("embedded, 1 worker (memory reserver)", 1, "sqlite", False),
    Setup("embedded, 2 workers (sql reserver)", 2, "sqlite", False),
    Setup("postgresql, 1 worker (memory reserver)", 1, "postgresql", False),
    Setup("postgresql, 2 workers (sql reserver)", 2, "postgresql", False),
    Setup("postgresql + redis, 1 worker", 1, "postgresql", True),
    Setup("postgresql + redis, 2 workers", 2, "postgresql", True),
]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(**PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _make_key(db_url: str) -> str:
    from smartoken.auth.keys import generate_key
    from smartoken.store import repo
    from smartoken.store.db import make_engine, migrate

    engine = make_engine(db_url)
    try:
        await migrate(engine)
        aid = await repo.create_account(engine, "bench")
        await repo.credit_wallet(engine, aid, 1_000_000_000_000)
        secret, prefix, digest = generate_key()
        await repo.insert_key(engine, aid, prefix, digest,
                              repo.KeyFields(daily_budget_micro=900_000_000_000))
        return secret
    finally:
        await engine.dispose()


def _wrk(url: str, key: str, seconds: int, connections: int, tmp: Path) -> dict[str, float]:
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(BODY))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n')
    out = subprocess.run(["wrk", "-t", str(min(2, connections)), "-c", str(connections),
                          "-d", f"{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = re.search(r"Latency\s+([\d.]+)(us|ms|s)", out)
    assert lat is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[lat.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "latency_ms": float(lat.group(1)) * scale,
            "errors": float(errors.group(1)) if errors else 0.0}


def _aiohttp(url: str, key: str, seconds: int, connections: int) -> dict[str, float]:
    import aiohttp

    async def main() -> dict[str, float]:
        done, errors, lat = 0, 0, 0.0
        stop = time.monotonic() + seconds
        headers = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            async def one() -> None:
                nonlocal done, errors, lat
                while time.monotonic() < stop:
                    t0 = time.perf_counter()
                    async with session.post(url, json=BODY) as resp:
                        await resp.read()
                        errors += resp.status != 200
                    lat += time.perf_counter() - t0
                    done += 1

            await asyncio.gather(*(one() for _ in range(connections)))
        return {"rps": done / seconds, "latency_ms": lat / max(done, 1) * 1000,
                "errors": float(errors)}

    return asyncio.run(main())


def run_setup(setup: Setup, upstream: str, seconds: int, connections: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="st-bench-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SMARTOKEN_") and not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    dbname = None
    prefix = f"stbench:{secrets.token_hex(4)}:"
    if setup.database == "postgresql":
        dbname = "st_bench_" + secrets.token_hex(4)
        asyncio.run(_pg(f"CREATE DATABASE {dbname}"))
        env["SMARTOKEN_DATABASE_URL"] = (f"postgresql://{PG_ADMIN['user']}@127.0.0.1:5432/"
                                         f"{dbname}")
    db_url = env.get("SMARTOKEN_DATABASE_URL",
                     f"sqlite+aiosqlite:///{tmp / 'data' / 'smartoken.db'}")
    if setup.redis:
        env["SMARTOKEN_REDIS_URL"] = REDIS_URL
        env["SMARTOKEN_REDIS_PREFIX"] = prefix
    elif setup.workers == 1:
        env["SMARTOKEN_RESERVER"] = "memory"
    config = {"providers": {"fake": {"base_url": upstream, "api_key": "x"}},
              "models": {"kimi-k2": {"routes": [{"provider": "fake"}]}}}
    (tmp / "smartoken.yaml").write_text(yaml.safe_dump(config))
    key = asyncio.run(_make_key(db_url))
    port = free_port()
    args = [sys.executable, "-m", "smartoken", "--data-dir", str(tmp / "data"), "--config",
            str(tmp / "smartoken.yaml"), "serve", "--port", str(port), "--log-level", "error"]
    if setup.workers > 1:
        args += ["--workers", str(setup.workers)]
    proc = subprocess.Popen(args, env=env, cwd=tmp, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "gateway.log", "wb"))  # noqa: SIM115
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        url = base + "/v1/chat/completions"
        load = (lambda s, c: _wrk(url, key, s, c, tmp)) if shutil.which("wrk") else \
            (lambda s, c: _aiohttp(url, key, s, c))
        load(2, connections)  # warm-up: key cache, counters, connection pools
        busy = load(seconds, connections)
        single = load(max(3, seconds // 2), 1)
        return {"setup": setup.name, "rps": busy["rps"], "errors": busy["errors"],
                "latency_ms_c1": single["latency_ms"], "rps_c1": single["rps"]}
    finally:
        proc.terminate()
        proc.wait(60)
        if dbname:
            asyncio.run(_pg(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
        if setup.redis:
            r = redis.Redis.from_url(REDIS_URL)
            keys = list(r.scan_iter(match=prefix + "*"))
            if keys:
                r.delete(*keys)
        shutil.rmtree(tmp, ignore_errors=True)


async def _micro(n: int) -> list[tuple[str, float]]:
    """Per-request cost of the reservation itself: ``n`` sequential reserve + settle pairs per
    reserver, in this process (no HTTP), settlements awaited as the ledger batch would."""
    from zoneinfo import ZoneInfo

    from smartoken.auth.keys import context_from_row, generate_key
    from smartoken.budget.redis_reserver import RedisReserver
    from smartoken.budget.reserver import MemoryReserver
    from smartoken.budget.sql_reserver import SqlReserver
    from smartoken.budget.windows import Windows
    from smartoken.cluster.options import ClusterOptions
    from smartoken.cluster.redis_pool import connect
    from smartoken.store import repo
    from smartoken.store.db import make_engine, migrate

    tmp = Path(tempfile.mkdtemp(prefix="st-micro-"))
    dbname = "st_bench_" + secrets.token_hex(4)
    await _pg(f"CREATE DATABASE {dbname}")
    prefix = f"stbench:{secrets.token_hex(4)}:"
    redis_client = connect(REDIS_URL)
    out = []
    try:
        for label, url in (("sqlite", f"sqlite+aiosqlite:///{tmp / 'micro.db'}"),
                           ("postgresql", f"postgresql://{PG_ADMIN['user']}@127.0.0.1:5432/"
                                          f"{dbname}")):
            engine = make_engine(url)
            await migrate(engine)
            aid = await repo.create_account(engine, "micro")
            await repo.credit_wallet(engine, aid, 10**12)
            _, kprefix, digest = generate_key()
            await repo.insert_key(engine, aid, kprefix, digest,
                                  repo.KeyFields(daily_budget_micro=10**11))
            key = context_from_row(await repo.key_by_hash(engine, digest) or {})
            windows = Windows(ZoneInfo("UTC"))
            await redis_client.set(prefix + "epoch", 0)
            reservers: list[tuple[str, Any]] = [
                ("memory", MemoryReserver(engine, windows)),
                ("sql", SqlReserver(engine, windows, "bench")),
            ]
            if label == "postgresql":
                reservers.append(("redis", RedisReserver(
                    engine, windows, redis_client, ClusterOptions(prefix=prefix), "bench")))
            for name, reserver in reservers:
                for i in range(n + 20):
                    if i == 20:  # after a warm-up (counters loaded, pools filled)
                        t0 = time.perf_counter()
                    res = await reserver.reserve(key, 100, f"r{i}-{secrets.token_hex(4)}")
                    reserver.settle(res, 0)
                    task = getattr(reserver, "_settles", {}).get(res.id)
                    if task is not None:
                        await task
                out.append((f"{name} reserver on {label}",
                            (time.perf_counter() - t0) / n * 1000))
                if hasattr(reserver, "close"):
                    await reserver.close()
            await engine.dispose()
    finally:
        keys = [k async for k in redis_client.scan_iter(match=prefix + "*")]
        if keys:
            await redis_client.delete(*keys)
        await redis_client.aclose()
        await _pg(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", nargs="*", default=None,
                        help="substrings of the setup names to run")
    parser.add_argument("--micro", type=int, default=500,
                        help="reserve+settle pairs per reserver in the in-process run (0: skip)")
    args = parser.parse_args()
    if args.micro:
        for name, ms in asyncio.run(_micro(args.micro)):
            print(f"{name:<42} {ms:6.3f} ms per reserve + settle (in process)", flush=True)
    port = free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "tests.fakes.upstream", "--port",
                                 str(port)], cwd=ROOT, env={**os.environ,
                                                            "PYTHONPATH": str(ROOT)})
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/_requests", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        rows = []
        for setup in SETUPS:
            if args.only and not any(o in setup.name for o in args.only):
                continue
            row = run_setup(setup, f"http://127.0.0.1:{port}/v1", args.seconds,
                            args.connections)
            rows.append(row)
            print(f"{row['setup']:<42} {row['rps']:8.0f} req/s (c={args.connections}, "
                  f"{row['errors']:.0f} errors)   {row['latency_ms_c1']:6.2f} ms/request (c=1)",
                  flush=True)
    finally:
        upstream.terminate()
        upstream.wait(10)


if __name__ == "__main__":
    main()

"""Live-gateway harness: a real ``smartoken serve`` process on a loopback port, its database,
and helpers to make accounts, keys and credits and to read the ledger back."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import yaml
from sqlalchemy import text

from smartoken.auth.keys import generate_key
from smartoken.money import parse_usd
from smartoken.store import repo
from smartoken.store.db import make_engine, migrate

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """One process at a time for work on ``folder`` (an ``npm install``): the workers of a
    parallel run (pytest-xdist) and the runs of other checkouts wait for each other."""
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"smartoken-tests-{digest}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m smartoken ARGS`` with the environment ``env`` (and nothing else of this
    process's), run in this process by click's test runner: the same command, output and exit
    code, without an interpreter start and its imports (~2 s of CPU a command). Use a real
    process for ``serve``. An uncaught exception is a traceback on stderr, as in a process."""
    from click.testing import CliRunner

    from smartoken.cli.main import main

    only = {**{k: None for k in os.environ if k not in env}, **env}
    result = CliRunner().invoke(main, args, env=only, prog_name="smartoken")
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reserve_port() -> socket.socket:
    """A socket bound to a free port and kept open, so that nothing else takes the port before
    the gateway listens on it: a port picked and released (``free_port``) was sometimes taken
    by another test's outgoing connection while the gateway was still starting (``address
    already in use``). The kernel gives neither an ephemeral connection nor another ``bind(0)``
    a port that is bound, while the gateway, binding with SO_REUSEADDR as uvicorn and asyncio
    do, can still listen on it (the reserving socket never listens)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


def held_port(owner: object) -> int:
    """A port reserved (``reserve_port``) for as long as ``owner`` lives: a server stopped and
    started again (a gateway, a proxy taking a database down and up) finds it still free."""
    hold = reserve_port()
    weakref.finalize(owner, hold.close)
    return int(hold.getsockname()[1])


class Gateway:
    def __init__(self, tmp: Path, config: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None, workers: int = 1,
                 log_level: str = "warning") -> None:
        self.tmp = tmp
        self.data_dir = tmp / "data"
        self.config = config
        self.port = held_port(self)
        self.workers = workers
        self.log_level = log_level
        self.env = {k: v for k, v in os.environ.items()
                    if not k.endswith("_API_KEY") and not k.startswith("SMARTOKEN_")}
        self.env.update({"SMARTOKEN_DEMO_DELAY_MS": "1", "PYTHONUNBUFFERED": "1",
                         "PYTHONPATH": str(ROOT),
                         # The fake upstreams listen on loopback: the test config allows it.
                         "SMARTOKEN_PRIVATE_UPSTREAMS": "127.0.0.0/8,::1,localhost"})
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / "gateway.log"
        self.database_url = self.env.get(
            "SMARTOKEN_DATABASE_URL",
            f"sqlite+aiosqlite:///{self.data_dir / 'smartoken.db'}")
        self._migrated: set[str] = set()

    # ------------------------------------------------------------------ process

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # A process imports the app and loads the tokenizer (~3 s of CPU) before it answers: on a
    # loaded machine (parallel workers, other runs) that took over 30 s.
    def start(self, timeout: float = 90) -> Gateway:
        args = [sys.executable, "-m", "smartoken", "--data-dir", str(self.data_dir)]
        if self.config is not None:
            cfg = self.tmp / "smartoken.yaml"
            cfg.write_text(yaml.safe_dump(self.config))
            args += ["--config", str(cfg)]
        args += ["serve", "--port", str(self.port), "--log-level", self.log_level]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(args, env=self.env, stdout=self._log, stderr=self._log,
                                     cwd=self.tmp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/readyz", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        # The fixture never learns of a gateway whose start failed: stop it here, or it
        # outlives the test (on a loaded machine, dozens of them kept the load above 100).
        self.proc.kill()
        self.proc.wait(10)
        raise RuntimeError(f"gateway did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    # ------------------------------------------------------------------ database

    def db(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        async def main() -> T:
            engine = make_engine(self.database_url)
            try:
                # Once per database: an Alembic upgrade that finds the head still costs
                # ~30 ms of CPU, and the polling helpers (wait_usage) call this every 50 ms.
                if self.database_url not in self._migrated:
                    await migrate(engine)
                    self._migrated.add(self.database_url)
                return await fn(engine)
            finally:
                await engine.dispose()

        return asyncio.run(main())

    def sql(self, query: str, **params: Any) -> list[dict[str, Any]]:
        async def go(engine: Any) -> list[dict[str, Any]]:
            async with engine.connect() as conn:
                rows = (await conn.execute(text(query), params)).mappings().all()
            return [dict(r) for r in rows]

        return self.db(go)

    def account(self, name: str, credit: str = "0", role: str = "user") -> int:
        async def go(engine: Any) -> int:
            existing = await repo.get_account(engine, name=name)
            aid = int(existing["id"]) if existing else await repo.create_account(engine, name,
                                                                                 role)
            if parse_usd(credit):
                await repo.credit_wallet(engine, aid, parse_usd(credit), reason="test credit")
            return aid

        return self.db(go)

    def key(self, account: str = "admin", credit: str = "0", **fields: Any) -> str:
        """A key of ``account``. An unrestricted one is created as an admin key (as the
        bootstrap key, ``keys create --admin``) unless ``admin=False``: it has admin authority
        while its account has the admin role."""
        aid = self.account(account, credit)
        if "admin" not in fields:
            fields["admin"] = not any(v is not None for k, v in fields.items() if k != "name")
        secret, prefix, digest = generate_key()

        async def go(engine: Any) -> int:
            return await repo.insert_key(engine, aid, prefix, digest, repo.KeyFields(**fields))

        self.key_ids = getattr(self, "key_ids", {})
        self.key_ids[secret] = self.db(go)
        return secret

    def usage(self, **where: Any) -> list[dict[str, Any]]:
        clause = " AND ".join(f"{k} = :{k}" for k in where) or "1=1"
        return self.sql(f"SELECT * FROM usage_records WHERE {clause} ORDER BY created_at",
                        **where)

    def wait_usage(self, n: int, timeout: float = 10, **where: Any) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = self.usage(**where)
            if len(rows) >= n:
                return rows
            time.sleep(0.05)
        return rows

    def client(self, key: str, **kw: Any) -> openai.OpenAI:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 30)
        return openai.OpenAI(api_key=key, base_url=self.base_url + "/v1", **kw)

    def async_client(self, key: str, **kw: Any) -> openai.AsyncOpenAI:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 60)
        return openai.AsyncOpenAI(api_key=key, base_url=self.base_url + "/v1", **kw)


def fake_config(*fakes: Any, models: dict[str, Any] | None = None,
                **extra: Any) -> dict[str, Any]:
    """A config with one provider per fake upstream (fake0, fake1, ...) and, unless ``models``
    is given, ``kimi-k2`` routed to fake0."""
    providers = {f"fake{i}": {"base_url": f.base_url, "api_key": f"upstream-secret-{i}",
                              "dialect": getattr(f, "dialect", "openai"),
                              "timeouts": {"connect": 2, "first_byte": 5, "idle": 5,
                                           "total": 30}}
                 for i, f in enumerate(fakes)}
    if models is None:
        models = {"kimi-k2": {"routes": [{"provider": "fake0",
                                          "upstream_model": "kimi-k2-upstream"}]}}
    return {"providers": providers, "models": models, **extra}

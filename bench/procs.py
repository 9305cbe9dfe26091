"""The processes under test: fake upstreams, ``smartoken serve``, optionally LiteLLM's proxy,
and their CPU time and memory read from /proc."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.harness import ROOT, Gateway, free_port

TICKS = os.sysconf("SC_CLK_TCK")
MODEL = "bench-fast"
SLOW_MODEL = "bench-slow"
PACED_MODEL = "bench-paced"
UPSTREAM_MODEL = "bench-upstream"


def raise_fd_limit() -> int:
    """Lift this process's open-file limit to the hard limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server may fork workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants, in seconds."""
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICKS


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of ``pid`` and its descendants (``VmRSS``; ``VmHWM`` for the peak)."""
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Fake:
    """``python -m tests.fakes.upstream`` as its own process."""

    def __init__(self, root: Path, log: Path, chunks: int = 20, chunk_delay: float = 0.0) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        args = [sys.executable, "-m", "tests.fakes.upstream", "--port", str(self.port),
                "--chunks", str(chunks), "--chunk-delay", str(chunk_delay)]
        env = {**os.environ, "PYTHONPATH": str(root)}
        self._log = open(log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(args, env=env, cwd=root, stdout=self._log,
                                     stderr=self._log)
        try:
            wait_http(f"http://127.0.0.1:{self.port}/_requests", self.proc)
            # The default answer has 14 words, too few for ``chunks`` pieces: send a longer one.
            content = " ".join(f"word{i}" for i in range(chunks))
            httpx.post(f"http://127.0.0.1:{self.port}/_scenario", timeout=10, json={
                "chunks": chunks, "chunk_delay": chunk_delay, "content": content})
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        stop(self.proc)
        self._log.close()


class FloorRelay:
    """``python -m bench.floor``: the bare uvicorn + aiohttp relay in front of ``upstream``."""

    def __init__(self, root: Path, log: Path, upstream: Fake, paced: Fake) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.floor", "--port", str(self.port), "--upstream",
             upstream.base_url, "--paced", paced.base_url],
            env={**os.environ, "PYTHONPATH": str(root)}, cwd=root, stdout=self._log,
            stderr=self._log)
        try:
            wait_http(self.base_url + "/", self.proc)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        stop(self.proc)
        self._log.close()


def gateway_config(fast: Fake, slow: Fake | None, paced: Fake | None = None) -> dict[str, Any]:
    timeouts = {"connect": 5, "first_byte": 60, "idle": 120, "total": 3600}
    providers = {"fast": {"base_url": fast.base_url, "api_key": "upstream-secret",
                          "dialect": "openai", "timeouts": timeouts}}
    model = {"family": "kimi", "context_window": 131072, "max_output": 8192,
             "input_price": "0.10", "output_price": "0.20"}
    models: dict[str, Any] = {MODEL: {**model, "routes": [
        {"provider": "fast", "upstream_model": UPSTREAM_MODEL}]}}
    for name, fake, model_id in (("slow", slow, SLOW_MODEL), ("paced", paced, PACED_MODEL)):
        if fake is not None:
            providers[name] = {**providers["fast"], "base_url": fake.base_url}
            models[model_id] = {**model, "routes": [
                {"provider": name, "upstream_model": UPSTREAM_MODEL}]}
    return {"providers": providers, "models": models}


def start_gateway(tmp: Path, root: Path, config: dict[str, Any]) -> tuple[Gateway, str]:
    """A real ``smartoken serve`` (one worker) running the code in ``root``, and a key whose
    wallet holds plenty of credit. It logs at the product's default level (``info``: one JSON
    access line per request, to a file), so the CPU measured includes the access log."""
    tmp.mkdir(parents=True, exist_ok=True)
    gw = Gateway(tmp, config, env={"PYTHONPATH": str(root)},
                 log_level=os.environ.get("BENCH_LOG_LEVEL", "info"))
    if root.resolve() == ROOT:
        key = gw.key(account="bench", credit="1000000")
    else:  # another checkout (--compare): its own code migrates its database and makes the key
        key = subprocess.run(
            [sys.executable, "-c", _KEY_SNIPPET, str(tmp), gw.database_url],
            env={**os.environ, "PYTHONPATH": str(root)}, cwd=root, check=True,
            capture_output=True, text=True, timeout=120).stdout.strip().splitlines()[-1]
    gw.start(timeout=60)
    return gw, key


_KEY_SNIPPET = """
import sys
from pathlib import Path
from tests.harness import Gateway
gw = Gateway(Path(sys.argv[1]))
gw.database_url = sys.argv[2]
print(gw.key(account="bench", credit="1000000"))
"""


class LiteLLM:
    """LiteLLM's proxy from a virtualenv outside the repository (optional column)."""

    def __init__(self, venv: Path, tmp: Path, fast: Fake, paced: Fake) -> None:
        import yaml

        self.port = free_port()
        cfg = tmp / "litellm.yaml"
        cfg.write_text(yaml.safe_dump({
            "model_list": [{"model_name": name, "litellm_params": {
                "model": f"openai/{UPSTREAM_MODEL}", "api_base": fake.base_url,
                "api_key": "upstream-secret"}} for name, fake in ((MODEL, fast),
                                                                  (PACED_MODEL, paced))],
            "litellm_settings": {"telemetry": False, "drop_params": True},
        }))
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "LITELLM_TELEMETRY": "False", "LITELLM_MASTER_KEY": "sk-bench-litellm"}
        env.pop("PYTHONPATH", None)
        self.key = "sk-bench-litellm"
        self._log = open(tmp / "litellm.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(venv / "bin" / "litellm"), "--config", str(cfg), "--host", "127.0.0.1",
             "--port", str(self.port), "--num_workers", "1"],
            env=env, cwd=tmp, stdout=self._log, stderr=self._log)
        try:
            wait_http(f"http://127.0.0.1:{self.port}/health/liveliness", self.proc, timeout=180)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop(self.proc)
        self._log.close()

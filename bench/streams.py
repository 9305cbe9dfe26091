"""Thousands of concurrent open streams through the gateway, and its memory while they are open.

``python -m bench.streams --url U --key K --streams N`` is the load generator: its own process,
one aiohttp session, every stream a task that reads as chunks arrive. It prints a JSON status
line twice a second and runs until terminated. ``hold()`` drives it from the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import procs


@dataclass(slots=True)
class Counts:
    started: int = 0
    open: int = 0
    done: int = 0
    failed: int = 0
    last_error: str = ""


async def _one(session: Any, url: str, body: bytes, headers: dict[str, str], c: Counts) -> None:
    import aiohttp

    c.started += 1
    opened = False
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            if resp.status != 200:
                c.failed += 1
                c.last_error = f"HTTP {resp.status}: {(await resp.read())[:200]!r}"
                return
            async for _data in resp.content.iter_any():
                if not opened:
                    opened = True
                    c.open += 1
        c.done += 1
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        c.failed += 1
        c.last_error = f"{type(exc).__name__}: {exc}"
    finally:
        if opened:
            c.open -= 1


async def _main(url: str, key: str, model: str, n: int, ramp: float) -> None:
    import aiohttp

    procs.raise_fd_limit()
    body = json.dumps({"model": model, "stream": True, "max_tokens": 256,
                       "messages": [{"role": "user", "content": "Hold this stream open."}]}
                      ).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    c = Counts()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        step = max(1, n // max(1, int(ramp * 20)))
        for i in range(0, n, step):
            for _ in range(min(step, n - i)):
                tasks.append(asyncio.create_task(_one(session, url, body, headers, c)))
            await asyncio.sleep(0.05)
            if i % (step * 10) == 0:
                _status(c)
        while True:
            _status(c)
            await asyncio.sleep(0.5)


def _status(c: Counts) -> None:
    sys.stdout.write(json.dumps({"t": time.time(), "started": c.started, "open": c.open,
                                 "done": c.done, "failed": c.failed,
                                 "last_error": c.last_error}) + "\n")
    sys.stdout.flush()


def main() -> None:
    p = argparse.ArgumentParser(description="Hold N concurrent streams open")
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--model", default=procs.SLOW_MODEL)
    p.add_argument("--streams", type=int, default=5000)
    p.add_argument("--ramp", type=float, default=10.0, help="seconds to open them all")
    a = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(a.url, a.key, a.model, a.streams, a.ramp))


def hold(gateway_url: str, key: str, gateway_pid: int, n: int, timeout: float = 240,
         on_sample: Callable[[], None] | None = None, ramp: float = 10.0) -> dict[str, Any]:
    """Open ``n`` streams through the gateway, wait until they are all open at once, and read
    the gateway's memory then; close them and check the gateway is still healthy.
    ``on_sample`` is called with each new peak of open streams (another memory reading)."""
    import httpx

    idle_rss = procs.rss_bytes(gateway_pid)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.streams", "--url", gateway_url + "/v1/chat/completions",
         "--key", key, "--streams", str(n), "--ramp", str(ramp)],
        stdout=subprocess.PIPE, text=True)
    latest: dict[str, Any] = {}

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with contextlib.suppress(ValueError):
                latest.update(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    t0 = time.monotonic()
    peak_open, rss_at_peak, cpu0 = 0, 0, procs.cpu_seconds(gateway_pid)
    try:
        while time.monotonic() - t0 < timeout:
            time.sleep(0.5)
            if proc.poll() is not None:
                break
            opened = int(latest.get("open", 0))
            if opened > peak_open:
                peak_open, rss_at_peak = opened, procs.rss_bytes(gateway_pid)
                if on_sample is not None:
                    on_sample()
            if opened >= n:
                time.sleep(2)  # a little steady state with every stream open
                rss_at_peak = max(rss_at_peak, procs.rss_bytes(gateway_pid))
                if on_sample is not None:
                    on_sample()
                break
            if latest.get("done", 0) > 0 and opened < peak_open:
                break  # streams have started to finish: the plateau is behind us
        seconds_to_open = time.monotonic() - t0
    finally:
        procs.stop(proc)  # closes every stream: the gateway sees n client disconnects
    cpu = procs.cpu_seconds(gateway_pid) - cpu0
    healthy = False
    for _ in range(60):
        try:
            healthy = httpx.get(gateway_url + "/healthz", timeout=5).status_code == 200
            if healthy:
                break
        except httpx.HTTPError:
            time.sleep(1)
    return {"streams": n, "open_at_once": peak_open, "failed": latest.get("failed", 0),
            "last_error": latest.get("last_error", ""), "seconds_to_open": seconds_to_open,
            "idle_rss": idle_rss, "rss": rss_at_peak,
            "peak_rss": procs.rss_bytes(gateway_pid, "VmHWM"), "cpu_seconds": cpu,
            "healthy_after": healthy}


if __name__ == "__main__":
    main()

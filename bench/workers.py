"""``python -m bench.workers``: ``smartoken serve --workers N`` against one worker (issue 16).

Two measurements, each of a real ``smartoken serve`` on PostgreSQL + Redis (the set-up several
workers are for: the reservations of all workers in Redis; the same backend for 1 and N
workers, so that only the worker count differs):

- **scaling** (``--seconds``, ``--repeat``): non-stream chat completions at ``--connections``
  through 1 worker and through N, interleaved, wrk and the fake upstream in their own
  processes. It reports requests/s (medians), the ratio N-workers / 1-worker against the
  target ``>= 0.8 N``, and the gateway's CPU per request (all its processes) for each: on a
  machine with N cores, wrk and the fake upstream take cores too, so raw throughput cannot
  reach N x; the CPU-normalised ratio (requests per gateway CPU-second) shows whether a
  second worker costs anything per request, which is what decides the scaling on N cores
  set apart for the gateway. ``--pin`` pins wrk and the fake upstream to the last core
  (``taskset``), the gateway to the others and that one.
- **streams** (``--streams``): that many concurrent streams from a slow upstream (60 chunks
  ``--gap`` seconds apart, opened over ``--ramp`` seconds) held open through N workers, and
  the memory of all the gateway's processes while they are open: RSS and PSS (shared pages
  divided among the processes, the honest sum for forked workers). A process needs two
  descriptors per stream (client and upstream); with the machine's hard open-file limit of
  20,000 one worker tops out near 9,900 streams, two workers hold 10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from bench import procs, streams, wrk
from bench.memory import rollup
from bench.scaleout import PG_ADMIN, REDIS_URL, _make_key, _pg

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
BODY = json.dumps({"model": procs.MODEL, "max_tokens": 64, "messages": [
    {"role": "user", "content": "Say something about foxes and dogs, briefly."}]}).encode()


class Server:
    """``smartoken serve --workers N`` on a fresh PostgreSQL database and Redis prefix."""

    def __init__(self, workers: int, config: dict[str, Any], tmp: Path,
                 cpus: str | None = None) -> None:
        self.tmp = tmp
        self.dbname = "st_workers_" + secrets.token_hex(4)
        self.prefix = f"stworkers:{secrets.token_hex(4)}:"
        asyncio.run(_pg(f"CREATE DATABASE {self.dbname}"))
        db_url = f"postgresql://{PG_ADMIN['user']}@127.0.0.1:5432/{self.dbname}"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SMARTOKEN_") and not k.endswith("_API_KEY")}
        env.update({"PYTHONPATH": str(ROOT), "SMARTOKEN_DATABASE_URL": db_url,
                    "SMARTOKEN_REDIS_URL": REDIS_URL, "SMARTOKEN_REDIS_PREFIX": self.prefix,
                    "SMARTOKEN_PRIVATE_UPSTREAMS": "127.0.0.0/8,::1,localhost"})
        (tmp / "smartoken.yaml").write_text(yaml.safe_dump(config))
        self.key = asyncio.run(_make_key(db_url))
        self.port = procs.free_port()
        args = [sys.executable, "-m", "smartoken", "--data-dir", str(tmp / "data"), "--config",
                str(tmp / "smartoken.yaml"), "serve", "--port", str(self.port),
                "--log-level", "warning"]
        if workers > 1:
            args += ["--workers", str(workers)]
        if cpus:
            args = ["taskset", "-c", cpus, *args]
        self._log = open(tmp / f"gateway-{workers}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(args, env=env, cwd=tmp, stdout=self._log,
                                     stderr=self._log)
        self.base_url = f"http://127.0.0.1:{self.port}"
        try:
            procs.wait_http(self.base_url + "/readyz", self.proc, timeout=120)
            # every worker ready: as many answered requests as a few per worker
            for _ in range(4 * workers):
                httpx.post(self.base_url + "/v1/chat/completions", content=BODY, timeout=30,
                           headers={"Authorization": f"Bearer {self.key}",
                                    "content-type": "application/json"}).raise_for_status()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        procs.stop(self.proc)
        self._log.close()
        asyncio.run(_pg(f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)"))
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=self.prefix + "*"))
        if keys:
            r.delete(*keys)


def pss_bytes(pid: int) -> int:
    """PSS of ``pid`` and its descendants (supervisor, workers, resource tracker)."""
    total = 0
    for p in procs._tree(pid):
        try:
            total += rollup(p)["pss"]
        except OSError:
            continue
    return total


def scaling(n: int, seconds: float, repeat: int, connections: int, pin: bool) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="smartoken-workers-"))
    last = str((os.cpu_count() or 2) - 1)
    fake = procs.Fake(ROOT, tmp / "fake.log")
    if pin:
        subprocess.run(["taskset", "-pc", last, str(fake.pid)], check=True,
                       capture_output=True)
    servers: dict[int, Server] = {}
    rows: dict[int, list[dict[str, float]]] = {1: [], n: []}
    try:
        for w in (1, n):
            servers[w] = Server(w, procs.gateway_config(fake, None), tmp)
        for s in servers.values():  # warm up
            wrk.run(s.base_url + "/v1/chat/completions", BODY, connections=connections,
                    seconds=2, key=s.key)
        for rep in range(repeat):
            for w, s in servers.items():
                cpu0 = procs.cpu_seconds(s.proc.pid)
                r = wrk_pinned(s.base_url + "/v1/chat/completions", connections, seconds,
                               s.key, last if pin else None)
                cpu = procs.cpu_seconds(s.proc.pid) - cpu0
                row = {"rps": r.rps, "p50": r.p50_ms, "p99": r.p99_ms,
                       "cpu_ms": cpu * 1000 / max(r.requests, 1),
                       "errors": r.errors + r.non2xx}
                rows[w].append(row)
                print(f"  [{rep + 1}/{repeat}] {w} worker(s): {r.rps:7.0f} req/s  p50 "
                      f"{r.p50_ms:6.2f} ms  p99 {r.p99_ms:7.2f} ms  gateway CPU "
                      f"{row['cpu_ms']:.3f} ms/req  errors {row['errors']}", flush=True)
    finally:
        for s in servers.values():
            s.stop()
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {w: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for w, rs in rows.items()}
    ratio = med[n]["rps"] / med[1]["rps"]
    per_cpu = {w: 1000 / m["cpu_ms"] for w, m in med.items()}  # requests per CPU-second
    efficiency = per_cpu[n] / per_cpu[1]
    print("\n| workers | requests/s | p50 ms | p99 ms | gateway CPU ms/request |\n"
          "|---:|---:|---:|---:|---:|\n" + "\n".join(
              f"| {w} | {m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {m['cpu_ms']:.3f} |"
              for w, m in med.items()))
    print(f"\n{'PASS' if ratio >= 0.8 * n else 'FAIL'}: {n} workers give {ratio:.2f}x the "
          f"throughput of one (target >= {0.8 * n:.1f}x; {connections} connections, medians "
          f"of {repeat} x {seconds:g} s, {os.cpu_count()} cores shared with wrk and the fake "
          f"upstream, load average {os.getloadavg()[0]:.1f})")
    print(f"CPU per request with {n} workers is {1 / efficiency:.2f}x that of one: on {n} "
          f"cores set apart for the gateway, {n} workers would serve ~{n * efficiency:.2f}x "
          f"(extrapolated from CPU time, not measured)")
    return 0


def wrk_pinned(url: str, connections: int, seconds: float, key: str,
               cpu: str | None) -> wrk.WrkResult:
    if cpu is None:
        return wrk.run(url, BODY, connections=connections, seconds=seconds, key=key)
    real = shutil.which("wrk")
    assert real is not None
    shim = Path(tempfile.mkdtemp()) / "wrk"
    shim.write_text(f"#!/bin/sh\nexec taskset -c {cpu} {real} \"$@\"\n")
    shim.chmod(0o755)
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{shim.parent}:{old}"
    try:
        return wrk.run(url, BODY, connections=connections, seconds=seconds, key=key)
    finally:
        os.environ["PATH"] = old
        shutil.rmtree(shim.parent, ignore_errors=True)


def hold_streams(n: int, workers: int, ramp: float, gap: float) -> int:
    fds = procs.raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="smartoken-workers-streams-"))
    fast = procs.Fake(ROOT, tmp / "fake.log")
    # 60 chunks ``gap`` seconds apart: each stream stays open an hour for the default gap
    slow = procs.Fake(ROOT, tmp / "fake-slow.log", chunks=60, chunk_delay=gap)
    server = None
    try:
        server = Server(workers, procs.gateway_config(fast, slow), tmp)
        idle_pss = pss_bytes(server.proc.pid)
        peak: dict[str, int] = {"pss": 0}

        def sample() -> None:
            peak["pss"] = max(peak["pss"], pss_bytes(server.proc.pid))

        held = streams.hold(server.base_url, server.key, server.proc.pid, n, timeout=600,
                            on_sample=sample, ramp=ramp)
    finally:
        if server is not None:
            server.stop()
        slow.stop()
        fast.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({**held, "workers": workers, "idle_pss": idle_pss,
                      "pss": peak["pss"], "open_files_limit": fds}))
    ok = held["open_at_once"] >= n and peak["pss"] < 1024 * MIB
    print(f"\n{'PASS' if ok else 'FAIL'}: {held['open_at_once']} of {n} streams open at once "
          f"through {workers} worker(s) (failed {held['failed']}, "
          f"{held['seconds_to_open']:.0f} s to open): all gateway processes PSS "
          f"{peak['pss'] / MIB:.0f} MiB (idle {idle_pss / MIB:.0f} MiB), RSS summed "
          f"{held['rss'] / MIB:.0f} MiB; target < 1024 MiB; healthy afterwards: "
          f"{'yes' if held['healthy_after'] else 'NO'} (open-file limit {fds} per process)")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--pin", action="store_true",
                    help="wrk and the fake upstream on the last core (taskset)")
    ap.add_argument("--streams", type=int, default=0,
                    help="hold this many streams open through --workers (skips the scaling)")
    ap.add_argument("--ramp", type=float, default=120,
                    help="seconds to open the streams over")
    ap.add_argument("--gap", type=float, default=10,
                    help="seconds between a slow stream's 60 chunks (10: ten minutes open)")
    a = ap.parse_args(argv)
    if not wrk.available() and not a.streams:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if a.streams:
        return hold_streams(a.streams, a.workers, a.ramp, a.gap)
    return scaling(a.workers, a.seconds, a.repeat, a.connections, a.pin)


if __name__ == "__main__":
    sys.exit(main())

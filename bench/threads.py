"""``python -m bench.threads [--stream] [--seconds N]``: where the gateway's CPU goes, per thread.

Runs wrk at concurrency 1 against one gateway and prints, for each of the gateway's threads
(event loop, database thread, tokenizer pool, …), its CPU time per request read from
``/proc/<pid>/task/<tid>/stat`` before and after the run. The event-loop thread is what the
Python-level profile (``bench.profile``) explains; the others are off the request's path.
"""

from __future__ import annotations

import argparse
import collections
import os

from bench import procs, wrk
from bench.run import body, single_gateway


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread (user and system time apart): the main (event-loop) thread and
    the others by id."""
    out: collections.Counter[str] = collections.Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, _, rest = f.read().rpartition(")")
        except OSError:
            continue
        fields = rest.split()
        name = "event loop" if tid == str(pid) else f"{head.split('(', 1)[1]} {tid}"
        out[f"{name} user"] += int(fields[11]) / procs.TICKS
        out[f"{name} system"] += int(fields[12]) / procs.TICKS
    return dict(out)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.threads")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--connections", type=int, default=1)
    a = p.parse_args()
    with single_gateway("smartoken-threads-") as (t, _):
        wrk.run(t.url, body(t, a.stream), connections=a.connections, seconds=2, key=t.key)
        before = thread_cpu(t.pid)
        r = wrk.run(t.url, body(t, a.stream), connections=a.connections, seconds=a.seconds,
                    key=t.key)
        after = thread_cpu(t.pid)
    n = max(r.requests, 1)
    print(f"{r.requests} requests, {r.rps:.0f} req/s, p50 {r.p50_ms:.2f} ms")
    total = 0.0
    for name in sorted(after, key=lambda k: before.get(k, 0) - after[k]):
        ms = (after[name] - before.get(name, 0)) * 1000 / n
        total += ms
        if ms:
            print(f"  {ms:7.3f} ms/req  {name}")
    print(f"  {total:7.3f} ms/req  total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m bench.protocols``: CPU per request of one gateway through each client protocol,
same fake upstream, same run: Chat Completions against ``/v1/responses`` and ``/v1/messages``
(when served), non-stream and 20-chunk streams, at concurrency 1 and 8. Issue 13 wants the
other protocols within 1.2x of Chat Completions.

Cells are interleaved and repeated; medians are reported, with each protocol's ratio to Chat
Completions. CPU is the gateway process's utime + stime over the requests wrk completed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench import procs, report, wrk

ROOT = Path(__file__).resolve().parent.parent
TEXT = "Say something about foxes and dogs, briefly."
LIMIT = 1.2


def bodies(model: str) -> dict[str, tuple[str, Any]]:
    """Per protocol: its path and a body builder taking ``stream``."""
    return {
        "chat": ("/v1/chat/completions", lambda s: {
            "model": model, "messages": [{"role": "user", "content": TEXT}], "max_tokens": 64,
            **({"stream": True, "stream_options": {"include_usage": True}} if s else {})}),
        "responses": ("/v1/responses", lambda s: {
            "model": model, "input": TEXT, "max_output_tokens": 64, "store": False,
            **({"stream": True} if s else {})}),
        "messages": ("/v1/messages", lambda s: {
            "model": model, "messages": [{"role": "user", "content": TEXT}], "max_tokens": 64,
            **({"stream": True} if s else {})}),
    }


def served(url: str, key: str, body: dict[str, Any]) -> bool:
    r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}",
                                            "x-api-key": key}, timeout=60)
    return r.status_code == 200


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.protocols", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=4)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    if not wrk.available():
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    procs.raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="smartoken-bench-protocols-"))
    fake = procs.Fake(ROOT, tmp / "fake.log", chunks=20)
    gw = None
    try:
        gw, key = procs.start_gateway(tmp / "gw", ROOT, procs.gateway_config(fake, None))
        assert gw.proc is not None
        protocols = {name: (gw.base_url + path, build) for name, (path, build)
                     in bodies(procs.MODEL).items()
                     if served(gw.base_url + path, key, build(False))}
        print(f"# protocols — {report.machine()}; serving {', '.join(protocols)}", flush=True)
        cells = [(f"{'stream' if s else 'non-stream'} c={c}", s, c)
                 for s in (False, True) for c in (1, 8)]
        cpu: dict[tuple[str, str], list[float]] = {}
        for rep in range(args.repeat + 1):  # the first round warms up
            for cell, stream, conns in cells:
                for name, (url, build) in protocols.items():
                    c0 = procs.cpu_seconds(gw.proc.pid)
                    r = wrk.run(url, json.dumps(build(stream)).encode(), connections=conns,
                                seconds=args.seconds if rep else 1, key=key)
                    ms = (procs.cpu_seconds(gw.proc.pid) - c0) * 1000 / max(1, r.requests)
                    if r.errors or r.non2xx:
                        raise RuntimeError(f"{name} {cell}: {r}")
                    if rep:
                        cpu.setdefault((cell, name), []).append(ms)
                        print(f"  [{rep}/{args.repeat}] {cell:16} {name:10} {r.rps:7.0f} req/s "
                              f"CPU {ms:6.3f} ms/req", flush=True)
        print(f"\n| scenario | {' | '.join(protocols)} |")
        print(f"|---|{'---|' * len(protocols)}")
        worst = 0.0
        for cell, _, _ in cells:
            base = statistics.median(cpu[(cell, "chat")])
            row = []
            for name in protocols:
                m = statistics.median(cpu[(cell, name)])
                ratio = m / base
                if name != "chat":
                    worst = max(worst, ratio)
                row.append(f"{m:.3f} ms ({ratio:.2f}x)")
            print(f"| {cell} | {' | '.join(row)} |")
        ok = worst <= LIMIT
        print(f"\n{'PASS' if ok else 'FAIL'}: CPU per request within {LIMIT}x of Chat "
              f"Completions (worst {worst:.2f}x); medians of {args.repeat} x {args.seconds:g} s")
        return 0 if ok else 1
    finally:
        if gw is not None:
            gw.stop()
        fake.stop()


if __name__ == "__main__":
    sys.exit(main())

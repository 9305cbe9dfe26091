"""``python -m bench.memory``: idle memory of ``smartoken serve`` with 1 and N workers.

For each process of the server (supervisor and workers) it reads ``/proc/<pid>/smaps_rollup``
the way ``smem`` does: RSS (pages resident, shared ones counted in full), PSS (shared pages
divided among the processes that map them) and USS (pages only this process holds). The
gateway is measured after it answered one chat request (so the tokenizer and the upstream
session are loaded) and sat idle for a second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import procs
from tests.harness import Gateway

MIB = 1024 * 1024


def rollup(pid: int) -> dict[str, int]:
    """RSS, PSS and USS of one process in bytes (``smaps_rollup``, kernel ≥ 4.14)."""
    out = {"rss": 0, "pss": 0, "uss": 0}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if not parts or not parts[0].isdigit():
                continue
            kib = int(parts[0]) * 1024
            if name == "Rss":
                out["rss"] = kib
            elif name == "Pss":
                out["pss"] = kib
            elif name in ("Private_Clean", "Private_Dirty"):
                out["uss"] += kib
    return out


def processes(pid: int) -> list[tuple[str, int]]:
    """The server's processes, named: the one started (a worker itself when alone), its
    workers, and multiprocessing's resource tracker."""
    tree = procs._tree(pid)
    out = []
    for p in tree:
        with open(f"/proc/{p}/cmdline", "rb") as f:
            cmd = f.read()
        role = ("resource tracker" if b"resource_tracker" in cmd else
                "supervisor" if p == pid and len(tree) > 1 else "worker")
        out.append((role, p))
    return out


def measure(workers: int, root: Path) -> list[tuple[str, dict[str, int]]]:
    fake = procs.Fake(root, Path(tempfile.mkdtemp()) / "fake.log")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = procs.gateway_config(fake, None)
            gw = Gateway(Path(tmp), config, workers=workers,
                         env={"PYTHONPATH": str(root)})
            key = gw.key(account="bench", credit="1000")
            gw.start(timeout=120)
            try:
                for _ in range(2 * workers):  # reach every worker, most likely
                    httpx.post(f"{gw.base_url}/v1/chat/completions", timeout=30,
                               headers={"Authorization": f"Bearer {key}"},
                               json={"model": procs.MODEL, "max_tokens": 8, "messages": [
                                   {"role": "user", "content": "hello there"}]},
                               ).raise_for_status()
                time.sleep(1.5)
                assert gw.proc is not None
                return [(role, rollup(p)) for role, p in processes(gw.proc.pid)]
            finally:
                gw.stop()
    finally:
        fake.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--root", type=Path, default=procs.ROOT,
                    help="checkout to run (default: this one)")
    args = ap.parse_args(argv)
    print("| workers | process | RSS MiB | PSS MiB | USS MiB |")
    print("|---:|---|---:|---:|---:|")
    for n in args.workers:
        rows = measure(n, args.root)
        for role, m in rows:
            print(f"| {n} | {role} | {m['rss'] / MIB:.0f} | {m['pss'] / MIB:.0f} "
                  f"| {m['uss'] / MIB:.0f} |")
        total = {k: sum(m[k] for _, m in rows) for k in ("rss", "pss", "uss")}
        print(f"| {n} | all | {total['rss'] / MIB:.0f} | {total['pss'] / MIB:.0f} "
              f"| {total['uss'] / MIB:.0f} |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m bench.run``: the gateway against a direct call to the fake upstream, side by side.

For non-stream and 20-chunk stream requests at concurrency 1 and 32 it reports requests/s,
p50/p99 latency (wrk) and CPU time per request of the server under test (utime + stime from
/proc/<pid>/stat before and after each run, over the request count). Scenarios and targets are
interleaved and repeated; the table shows medians. Then it holds 5,000 streams from a slow
upstream open through one gateway process and reports its RSS.

Targets: *direct* (the fake upstream itself), *floor* (``bench/floor.py``: a bare uvicorn +
aiohttp relay, no auth or accounting), *gateway* (this checkout), and optionally other
checkouts and LiteLLM. To add one, start its process and append a ``Target`` in ``main``.

Options: ``--record`` writes the table into bench/RESULTS.md (date, machine, commit);
``--compare LABEL=PATH`` adds a gateway running another checkout (before/after an
optimisation, same run); ``--litellm VENV`` adds LiteLLM's proxy from that virtualenv.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs, report, streams, wrk

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
README_MD = ROOT / "README.md"
PROMPT = [{"role": "user", "content": "Say something about foxes and dogs, briefly."}]


@dataclass(slots=True)
class Target:
    label: str
    url: str  # the chat completions endpoint
    pid: int
    paced_url: str  # the same, for the paced upstream
    key: str | None = None
    model: str = procs.MODEL
    paced_model: str = procs.PACED_MODEL
    paced_pid: int = 0  # the process serving paced_url, when not ``pid``


def body(target: Target, stream: bool, paced: bool = False) -> bytes:
    model = target.paced_model if paced else target.model
    b: dict[str, Any] = {"model": model, "messages": PROMPT, "max_tokens": 64}
    if stream:
        b["stream"] = True
        b["stream_options"] = {"include_usage": True}
    return json.dumps(b).encode()


# (name, stream, connections, paced): "paced" streams come from an upstream that sends its 20
# chunks 1 ms apart, so that each arrives on its own, as from a real model (the others arrive
# as fast as the fake can write them, several per read).
SCENARIOS = [("non-stream c=1", False, 1, False), ("non-stream c=32", False, 32, False),
             ("stream c=1", True, 1, False), ("stream c=32", True, 32, False),
             ("stream paced c=1", True, 1, True)]


@contextlib.contextmanager
def single_gateway(prefix: str) -> Iterator[tuple[Target, Path]]:
    """One fake upstream and one gateway running this checkout, for the diagnostics
    (``bench.threads``, ``bench.profile``): the target and a scratch folder."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    fast = procs.Fake(ROOT, tmp / "fake.log")
    paced = procs.Fake(ROOT, tmp / "fake-paced.log", chunks=20, chunk_delay=0.001)
    gw = None
    try:
        gw, key = procs.start_gateway(tmp / "gw", ROOT, procs.gateway_config(fast, None, paced))
        assert gw.proc is not None
        url = gw.base_url + "/v1/chat/completions"
        yield Target("gateway", url, gw.proc.pid, url, key), tmp
    finally:
        if gw is not None:
            gw.stop()
        fast.stop()
        paced.stop()


def measure(t: Target, scenario: str, stream: bool, conns: int, seconds: float,
            paced: bool = False) -> dict[str, Any]:
    pid = t.paced_pid if paced and t.paced_pid else t.pid
    cpu0 = procs.cpu_seconds(pid)
    r = wrk.run(t.paced_url if paced else t.url, body(t, stream, paced), connections=conns,
                seconds=seconds, key=t.key)
    cpu = procs.cpu_seconds(pid) - cpu0
    return {"scenario": scenario, "target": t.label, "requests": r.requests, "rps": r.rps,
            "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "errors": r.errors, "non2xx": r.non2xx,
            "cpu_ms": cpu * 1000 / r.requests if r.requests else float("nan")}


def first_requests(t: Target) -> str | None:
    """One request of each kind, with a generous timeout (a proxy may load lazily)."""
    import httpx

    headers = {"Content-Type": "application/json"}
    if t.key:
        headers["Authorization"] = f"Bearer {t.key}"
    for stream in (False, True):
        for paced in (False, True):
            try:
                r = httpx.post(t.paced_url if paced else t.url, headers=headers, timeout=120,
                               content=body(t, stream, paced))
            except httpx.HTTPError as exc:
                return f"{type(exc).__name__}: {exc}"
            if r.status_code != 200 or (stream and b"[DONE]" not in r.content):
                return f"HTTP {r.status_code}: {r.text[:300]}"
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5, help="length of each wrk run")
    p.add_argument("--repeat", type=int, default=3, help="runs per cell (medians reported)")
    p.add_argument("--streams", type=int, default=5000, help="concurrent open streams (0: skip)")
    p.add_argument("--compare", action="append", default=[], metavar="LABEL=PATH",
                   help="also run the gateway from another checkout")
    p.add_argument("--litellm", type=Path, default=None, metavar="VENV",
                   help="also run LiteLLM's proxy from this virtualenv")
    p.add_argument("--only", default="", help="comma-separated scenario filter, e.g. 'c=1'")
    p.add_argument("--record", action="store_true",
                   help="write the table, with date, machine and commit, into bench/RESULTS.md "
                   "(and its short form into README.md)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk.available():
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    fds = procs.raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="smartoken-bench-"))
    started: list[Any] = []
    runs: list[dict[str, Any]] = []
    print(f"# SmarToken benchmark — {report.machine()}; open files {fds}; logs in {tmp}",
          flush=True)
    try:
        fast = procs.Fake(ROOT, tmp / "fake.log", chunks=20)
        started.append(fast)
        slow = None
        if args.streams:
            # 60 chunks two seconds apart: a stream stays open two minutes.
            slow = procs.Fake(ROOT, tmp / "fake-slow.log", chunks=60, chunk_delay=2.0)
            started.append(slow)
        paced = procs.Fake(ROOT, tmp / "fake-paced.log", chunks=20, chunk_delay=0.001)
        started.append(paced)
        config = procs.gateway_config(fast, slow, paced)
        targets = [Target("direct", fast.base_url + "/chat/completions", fast.pid,
                          paced.base_url + "/chat/completions", model=procs.UPSTREAM_MODEL,
                          paced_model=procs.UPSTREAM_MODEL, paced_pid=paced.pid)]
        floor = procs.FloorRelay(ROOT, tmp / "floor.log", fast, paced)
        started.append(floor)
        targets.append(Target("floor", floor.base_url + "/v1/chat/completions", floor.pid,
                              floor.base_url + "/paced/v1/chat/completions",
                              model=procs.UPSTREAM_MODEL, paced_model=procs.UPSTREAM_MODEL))
        gateways = [("gateway", ROOT)] + [
            (f"gateway@{label}", Path(path).resolve())
            for label, path in (c.split("=", 1) for c in args.compare)]
        main_gw = None
        for label, root in gateways:
            gw, key = procs.start_gateway(tmp / label, root, config)
            started.append(gw)
            assert gw.proc is not None
            url = gw.base_url + "/v1/chat/completions"
            targets.append(Target(label, url, gw.proc.pid, url, key))
            main_gw = main_gw or (gw, key)
        if args.litellm:
            try:
                ll = procs.LiteLLM(args.litellm, tmp, fast, paced)
                started.append(ll)
                url = ll.base_url + "/v1/chat/completions"
                targets.append(Target("litellm", url, ll.pid, url, ll.key))
            except Exception as exc:  # optional column: report and go on without it
                print(f"LiteLLM skipped: {exc}", file=sys.stderr)
        scenarios = [s for s in SCENARIOS if all(f in s[0] for f in args.only.split(",") if f)]
        for t in list(targets):  # warm up: connections, caches, the key and wallet loaded
            problem = first_requests(t)
            if problem and t.label == "litellm":
                print(f"LiteLLM skipped: {problem}", file=sys.stderr)
                targets.remove(t)
                continue
            if problem:
                raise RuntimeError(f"{t.label}: {problem}")
            for name, stream, conns, pace in scenarios:
                r = measure(t, name, stream, conns, 2, pace)
                if r["errors"] or r["non2xx"] or (not r["requests"] and t.label != "litellm"):
                    raise RuntimeError(f"warm-up of {t.label} failed: {r}")
        for rep in range(args.repeat):
            for name, stream, conns, pace in scenarios:
                for t in targets:
                    r = measure(t, name, stream, conns, args.seconds, pace)
                    runs.append({**r, "rep": rep})
                    print(f"  [{rep + 1}/{args.repeat}] {name:16} {t.label:18} "
                          f"{r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.2f} ms  "
                          f"p99 {r['p99_ms']:7.2f} ms  CPU {r['cpu_ms']:7.3f} ms/req"
                          f"{'  ERRORS' if r['errors'] or r['non2xx'] else ''}", flush=True)
        labels = [t.label for t in targets]
        names = [s[0] for s in scenarios]
        print("\n" + report.table(runs, names, labels))
        print(f"\nMedians of {args.repeat} runs of {args.seconds:g} s each; spread:")
        print(report.spread(runs, names, labels))
        for text, ok in report.checks(runs, "gateway", "direct", "floor"):
            print(f"{'PASS' if ok else 'FAIL'}: {text}")
        held = None
        if args.streams and main_gw is not None:
            gw, key = main_gw
            assert gw.proc is not None
            held = streams.hold(gw.base_url, key, gw.proc.pid, args.streams)
            print("\n" + report.streams_line(held))
        if args.record:
            text = report.section(runs, names, labels, args,
                                  report.checks(runs, "gateway", "direct", "floor"), held)
            report.record(RESULTS_MD, text)
            report.record(README_MD, report.readme_section(text))
            print(f"\nrecorded in {RESULTS_MD} and {README_MD}")
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps({"machine": report.machine(), "args": vars(args) | {
            "litellm": str(args.litellm)}, "runs": runs, "streams": held}, default=str,
                                  indent=1))
        print(f"\nraw results: {out}")
    finally:
        for s in reversed(started):
            s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Medians of repeated runs, rendered as the Markdown tables of bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MiB = 1024 * 1024

# (key in a cell, row label, format)
METRICS = [("rps", "requests/s", "{:.0f}"), ("p50_ms", "p50 latency (ms)", "{:.2f}"),
           ("p99_ms", "p99 latency (ms)", "{:.2f}"), ("cpu_ms", "CPU per request (ms)",
                                                      "{:.3f}")]


def machine() -> str:
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // (1024 * 1024)
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores / {mem} GiB, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def medians(runs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Group runs by (scenario, target) and take the median of each metric, with the spread."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["scenario"], r["target"]), []).append(r)
    out = {}
    for k, rs in groups.items():
        cell: dict[str, Any] = {"n": len(rs), "errors": sum(r["errors"] + r["non2xx"] for r in rs)}
        for m, _, _ in METRICS:
            values = [r[m] for r in rs]
            cell[m] = statistics.median(values)
            cell[m + "_range"] = (min(values), max(values))
        out[k] = cell
    return out


def table(runs: list[dict[str, Any]], scenarios: list[str], targets: list[str]) -> str:
    cells = medians(runs)
    lines = ["| scenario | metric | " + " | ".join(targets) + " |",
             "|---|---|" + "---:|" * len(targets)]
    for s in scenarios:
        for m, label, fmt in METRICS:
            row = []
            for t in targets:
                c = cells.get((s, t))
                row.append("–" if c is None else fmt.format(c[m]) +
                           (" ⚠" if c["errors"] else ""))
            lines.append(f"| {s} | {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def spread(runs: list[dict[str, Any]], scenarios: list[str], targets: list[str]) -> str:
    """Min–max of CPU per request across repeats: how noisy the machine was."""
    cells = medians(runs)
    parts = []
    for s in scenarios:
        for t in targets:
            c = cells.get((s, t))
            if c:
                lo, hi = c["cpu_ms_range"]
                lo50, hi50 = c["p50_ms_range"]
                parts.append(f"{s} / {t}: CPU {lo:.3f}–{hi:.3f} ms, p50 {lo50:.2f}–{hi50:.2f} ms")
    return "\n".join("- " + p for p in parts)


def checks(runs: list[dict[str, Any]], gateway: str, direct: str,
           floor: str = "floor") -> list[tuple[str, bool]]:
    """The targets of issues 2 and 16 against the medians."""
    cells = medians(runs)
    out: list[tuple[str, bool]] = []
    for scenario, absolute in (("non-stream c=1", 0.5), ("stream c=1", 0.8)):
        g, f = cells.get((scenario, gateway)), cells.get((scenario, floor))
        if g and f:
            ratio = g["cpu_ms"] / f["cpu_ms"]
            out.append((f"{scenario}: gateway CPU {g['cpu_ms']:.3f} ms = {ratio:.1f}x the bare "
                        f"relay's {f['cpu_ms']:.3f} ms (issue 16: <= 1.5x and <= {absolute} ms)",
                        ratio <= 1.5 and g["cpu_ms"] <= absolute))
    for scenario in ("non-stream c=32", "stream c=32"):
        g = cells.get((scenario, gateway))
        if g:
            out.append((f"{scenario}: gateway p99 {g['p99_ms']:.1f} ms = "
                        f"{g['p99_ms'] / g['p50_ms']:.1f}x p50 (issue 16: <= 3x)",
                        g["p99_ms"] <= 3 * g["p50_ms"]))
    g, d = cells.get(("non-stream c=1", gateway)), cells.get(("non-stream c=1", direct))
    if g and d:
        added = g["p50_ms"] - d["p50_ms"]
        out.append((f"gateway adds {added:.2f} ms at p50 (non-stream, c=1; target ≤ 1 ms)",
                    added <= 1.0))
        out.append((f"gateway CPU {g['cpu_ms']:.3f} ms per non-stream request (target ≤ 1 ms)",
                    g["cpu_ms"] <= 1.0))
    s = cells.get(("stream c=1", gateway))
    if s:
        out.append((f"gateway CPU {s['cpu_ms']:.3f} ms per 20-chunk stream (target ≤ 2 ms)",
                    s["cpu_ms"] <= 2.0))
    return out


def streams_line(r: dict[str, Any]) -> str:
    return (f"{r['open_at_once']} of {r['streams']} streams open at once "
            f"(failed {r['failed']}, {r['seconds_to_open']:.0f} s to open): gateway RSS "
            f"{r['rss'] / MiB:.0f} MiB (idle {r['idle_rss'] / MiB:.0f} MiB, peak "
            f"{r['peak_rss'] / MiB:.0f} MiB; target < 1024 MiB); healthy afterwards: "
            f"{'yes' if r['healthy_after'] else 'NO'}")


BEGIN, END = "<!-- bench.run --record: begin -->", "<!-- bench.run --record: end -->"


def commit() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10, cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def section(runs: list[dict[str, Any]], scenarios: list[str], targets: list[str], args: Any,
            verdicts: list[tuple[str, bool]], held: dict[str, Any] | None) -> str:
    lines = [f"### Latest recorded run: {machine()}, commit {commit()}", "",
             f"`python -m bench.run --record` (medians of {args.repeat} runs of "
             f"{args.seconds:g} s; load average at the end "
             f"{os.getloadavg()[0]:.1f}):", "", table(runs, scenarios, targets), ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in verdicts]
    if held:
        lines += ["", streams_line(held)]
    return "\n".join(lines)


def readme_section(full: str) -> str:
    """The README's short form of a recorded section: the heading line, CPU per request and
    p99 rows of the table, the verdicts and the streams line (the rest is in RESULTS.md)."""
    keep = [line for line in full.splitlines()
            if not line.startswith("| ") or line.startswith("| scenario")
            or "CPU per request" in line or "p99" in line]
    return "\n".join(keep).replace("### Latest recorded run:", "Latest recorded run:", 1)


def record(path: Path, text: str) -> None:
    """Put ``text`` between the markers in ``path`` (appended with them the first time)."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + block + rest.split(END, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(doc)

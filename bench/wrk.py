"""HTTP load with wrk (Debian's ``wrk``): POST bodies and the summary come from a Lua script."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

MARK = "BENCH-RESULT "

SCRIPT = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
%(auth)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"errors":%%d,"non2xx":%%d,'
    .. '"p50_us":%%d,"p99_us":%%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(slots=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    non2xx: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def available() -> bool:
    return shutil.which("wrk") is not None


def run(url: str, body: bytes, *, connections: int, seconds: float,
        key: str | None = None, timeout: float = 30) -> WrkResult:
    """POST ``body`` to ``url`` over ``connections`` keep-alive connections for ``seconds``."""
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"' if key else ""
    script = SCRIPT % {"body": body.decode(), "auth": auth, "mark": MARK}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        threads = 1 if connections < 8 else 2
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
             "--timeout", f"{timeout:g}s", "-s", f.name, url],
            capture_output=True, text=True, timeout=seconds + timeout + 30, check=True,
        ).stdout
    finally:
        Path(f.name).unlink()
    line = next(x for x in out.splitlines() if x.startswith(MARK))
    r = json.loads(line[len(MARK):])
    return WrkResult(r["requests"], r["duration_us"] / 1e6, r["errors"], r["non2xx"],
                     r["p50_us"] / 1000, r["p99_us"] / 1000)

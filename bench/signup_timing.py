"""Do sign-up and reset answers take longer for an address that has an account? Median and
p90 answer times of 30 requests each, against an in-process gateway and a local SMTP server.
Reset requests are spaced 0.4 s apart (an attacker probing one address at a time).

    PYTHONPATH=. .venv/bin/python -m bench.signup_timing
"""

from __future__ import annotations

import pathlib
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.inproc import InProcessGateway
from tests.mailbox import Mailbox

N = 30
PW = "12345678x"


def main() -> None:
    cases: list[tuple[str, str, Callable[[int], dict[str, Any]], float]] = [
        ("signup known", "/account/signup",
         lambda i: {"email": f"known{i}@example.com", "password": PW}, 0.0),
        ("signup new", "/account/signup",
         lambda i: {"email": f"new{i}@example.com", "password": PW}, 0.0),
        ("forgot known", "/account/password/forgot",
         lambda i: {"email": f"known{i}@example.com"}, 0.4),
        ("forgot unknown", "/account/password/forgot",
         lambda i: {"email": f"none{i}@example.com"}, 0.4),
    ]
    with Mailbox() as box, tempfile.TemporaryDirectory() as d:
        gw = InProcessGateway(pathlib.Path(d), {"signup": {
            "policy": "open", "throttle_per_client": 10_000}},
            {"SMARTOKEN_SMTP_URL": box.url}).start()
        try:
            with httpx.Client(base_url=gw.base_url) as c:
                for i in range(N):
                    c.post("/account/signup", json={"email": f"known{i}@example.com",
                                                    "password": PW})
                time.sleep(1)
                for label, path, body, pause in cases:
                    times = []
                    for i in range(N):
                        time.sleep(pause)
                        t = time.perf_counter()
                        r = c.post(path, json=body(i))
                        times.append(time.perf_counter() - t)
                        assert r.status_code == 202, r.text
                    times.sort()
                    print(f"{label:15s} median {statistics.median(times) * 1000:6.1f} ms  "
                          f"p90 {times[int(N * 0.9)] * 1000:6.1f} ms")
        finally:
            gw.stop()


if __name__ == "__main__":
    main()

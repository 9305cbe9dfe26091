"""The gateway's own added time for a 2M-token request (about 8 MB of JSON).

Starts the fake upstream (its own process) and a gateway routing ``moonshot-v1-2m`` to it, then
sends the same 8 MB body straight to the fake and through the gateway, alternately, and prints
the medians side by side. The difference is what the gateway adds: reading the body, parsing,
sizing the prompt (context.py), reserving, serialising and posting it upstream.

    python -m bench.context [--rounds 7] [--mb 8]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from smartoken import tokens
from tests.harness import ROOT, Gateway, free_port

_WORDS = ("the of and to in is that it for on with as was at by an be this are or from "
         "have not but had his they you were her all she there would their we him been has "
         "when who will more no if out so said what up its about into than them can only "
         "other new some could time these two may then do first any my now such like our "
         "over man me even most made after also did many before must through back years "
         "where much your way well down should because each just those people")
WORDS = tuple(_WORDS.split(" "))


def document(mb: float) -> str:
    out, size, i = [], 0, 0
    target = int(mb * 1024 * 1024)
    n = len(WORDS)
    while size < target:
        w = WORDS[(i * 7919 + i // n) % n]
        out.append(w)
        size += len(w) + 1
        i += 1
    return " ".join(out)


def start_fake(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.upstream", "--port", str(port),
                             "--chunks", "4"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_requests", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("fake upstream did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--mb", type=float, default=8.0)
    args = parser.parse_args()
    text = document(args.mb)
    messages = [{"role": "user", "content": text}]
    t0 = time.perf_counter()
    exact = tokens.count_messages(messages)
    count_ms = (time.perf_counter() - t0) * 1000
    fake_port = free_port()
    fake = start_fake(fake_port)
    tmp = Path(tempfile.mkdtemp(prefix="bench-context-"))
    gw = Gateway(tmp, {"providers": {"fake": {"base_url": f"http://127.0.0.1:{fake_port}/v1",
                                              "api_key": "x"}},
                       "models": {"moonshot-v1-2m": {"routes": [{"provider": "fake"}]}}})
    try:
        gw.start()
        key = gw.key(credit="1000")
        payload = {"model": "moonshot-v1-2m", "messages": messages, "max_tokens": 16}
        body = orjson.dumps(payload)
        direct = orjson.dumps({**payload, "model": "moonshot-v1-2m"})
        hdr = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        with httpx.Client(timeout=120) as client:
            times: dict[str, list[float]] = {"direct": [], "gateway": []}
            for i in range(args.rounds + 1):
                for name, url, data in (
                        ("direct", f"http://127.0.0.1:{fake_port}/v1/chat/completions", direct),
                        ("gateway", gw.base_url + "/v1/chat/completions", body)):
                    t = time.perf_counter()
                    r = client.post(url, content=data, headers=hdr)
                    elapsed = (time.perf_counter() - t) * 1000
                    if r.status_code != 200:
                        raise RuntimeError(f"{name}: {r.status_code} {r.text[:300]}")
                    if i:  # the first round warms up connections and caches
                        times[name].append(elapsed)
        d, g = statistics.median(times["direct"]), statistics.median(times["gateway"])
        print(f"body {len(body) / 1e6:.1f} MB, {exact:,} tokens (o200k exact count alone: "
              f"{count_ms:.0f} ms)")
        print(f"{'':10}{'median':>10}{'min':>10}")
        print(f"{'direct':10}{d:>8.0f}ms{min(times['direct']):>8.0f}ms")
        print(f"{'gateway':10}{g:>8.0f}ms{min(times['gateway']):>8.0f}ms")
        print(f"gateway added: {g - d:.0f} ms median, "
              f"{min(times['gateway']) - min(times['direct']):.0f} ms best (target < 150 ms)")
    finally:
        gw.stop()
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()

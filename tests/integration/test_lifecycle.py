"""Issue 8: SIGTERM drains live streams, /readyz turns 503 at once, every usage record lands,
the process exits 0; bad configuration stops the CLI with a message naming file and key."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.harness import ROOT, Gateway, fake_config
from tests.harness import run_cli as harness_cli
from tests.moneykit import assert_invariants

STREAMS = 20


def test_sigterm_drains_twenty_streams_and_bills_them_all(make_fake: Any,
                                                          make_gateway: Any) -> None:
    # 40 chunks x 0.15 s: each stream lasts about 6 s, so all 20 are open at once.
    fake = make_fake(chunks=40, chunk_delay=0.15,
                     usage={"prompt_tokens": 30, "completion_tokens": 20})
    gw: Gateway = make_gateway(fake_config(fake, shutdown_delay_s=1.5, shutdown_grace_s=30))
    key = gw.key(credit="10")
    results: list[Any] = []
    readiness: list[int] = []

    async def one(client: Any) -> tuple[str, int]:
        stream = await client.chat.completions.create(
            model="kimi-k2", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "tell me"}])
        text, finished = [], 0
        async for chunk in stream:
            for c in chunk.choices:
                text.append(c.delta.content or "")
                finished += bool(c.finish_reason)
        return "".join(text), finished

    async def main() -> None:
        client = gw.async_client(key)
        tasks = [asyncio.create_task(one(client)) for _ in range(STREAMS)]
        deadline = time.monotonic() + 20
        while fake.active_streams < STREAMS and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert fake.active_streams == STREAMS, "the streams did not all start"
        assert gw.proc is not None
        gw.proc.send_signal(signal.SIGTERM)
        async with httpx.AsyncClient(timeout=2) as probe:
            for _ in range(5):  # during the drain delay the gateway still answers
                try:
                    readiness.append((await probe.get(gw.base_url + "/readyz")).status_code)
                except httpx.HTTPError:
                    readiness.append(-1)  # listener closed: also out of rotation
                await asyncio.sleep(0.1)
        results.extend(await asyncio.gather(*tasks, return_exceptions=True))
        await client.close()

    started = time.monotonic()
    asyncio.run(main())
    code = gw.proc.wait(40) if gw.proc else None
    elapsed = time.monotonic() - started
    assert code == 0, gw.log()
    assert readiness and readiness[0] == 503 and 200 not in readiness, readiness
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    assert all(finished == 1 for _, finished in results)
    assert elapsed < 30
    rows = gw.usage()
    assert len(rows) == STREAMS and {r["status"] for r in rows} == {"ok"}
    assert all(r["completion_tokens"] == 20 and not r["usage_estimated"] for r in rows)
    debits = gw.sql("SELECT COUNT(*) AS n FROM wallet_transactions WHERE kind = 'debit'")
    assert debits[0]["n"] == STREAMS


def test_sigterm_with_grace_exceeded_still_bills_what_was_delivered(make_fake: Any,
                                                                   make_gateway: Any) -> None:
    """A stream longer than the grace period is cut at the deadline; it ends with an error event,
    is billed for what it delivered, and the process still exits 0 with the record written."""
    # 200 chunks of at least a word each (the default content has only ~16 words, and a stream
    # of 16 chunks could end on its own just as the 1 s grace ran out).
    fake = make_fake(chunks=200, chunk_delay=0.1, content="word " * 400)
    gw: Gateway = make_gateway(fake_config(fake, shutdown_grace_s=1))
    key = gw.key(credit="10")
    got: list[str] = []

    def consume() -> None:
        try:
            with httpx.stream("POST", gw.base_url + "/v1/chat/completions", timeout=30,
                              headers={"authorization": f"Bearer {key}"},
                              json={"model": "kimi-k2", "stream": True,
                                    "messages": [{"role": "user", "content": "x"}]}) as r:
                for line in r.iter_lines():
                    got.append(line)
        except httpx.HTTPError:
            got.append("<cut>")

    t = threading.Thread(target=consume)
    t.start()
    deadline = time.monotonic() + 20
    while len(got) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.stop(signal.SIGTERM, timeout=30) == 0, gw.log()
    t.join(10)
    [row] = gw.usage()
    assert row["status"] == "partial" and "shutting down" in row["error"]
    assert row["completion_tokens"] > 0 and row["usage_estimated"]
    # Issue 12 item 15: the cut stream ends with an error event and [DONE], not silently.
    events = [line for line in got if line.startswith("data: ")]
    assert '"error"' in events[-2] and "shutting down" in events[-2], got[-3:]
    assert events[-1] == "data: [DONE]"
    assert_invariants(gw, gw.account("admin"), fakes=[fake], answered=1)


def run_cli(tmp: Path, *args: str, config: Any = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "smartoken", "--data-dir", str(tmp / "data")]
    if config is not None:
        path = tmp / "bad.yaml"
        path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
        cmd += ["--config", str(path)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_bad_config_stops_serve_with_file_key_and_problem(tmp_path: Path) -> None:
    cases = [
        ({"port": "eighty"}, "port", "must be an integer"),
        ({"cors_origins": ["not a url"]}, "cors_origins", "must be a list of origins"),
        ({"shutdown_grace_s": -1}, "shutdown_grace_s", "number of seconds"),
        ({"log_level": "loud"}, "log_level", "must be one of"),
        ({"providers": {"p": {"base_url": "ftp://x"}}}, "providers.p.base_url", "http(s) URL"),
        ({"models": {"kimi-k2": {"routes": [{"provider": "nope"}]}}}, "models.kimi-k2.routes",
         "unknown provider"),
        ({"surprise": 1}, "surprise", "unknown option"),
        ("port: [unclosed", "<file>", "invalid YAML"),
    ]
    path = tmp_path / "bad.yaml"
    for i, (config, key, problem) in enumerate(cases):
        if i == 0:  # a real process: the exit status and stderr of `smartoken serve` itself
            r = run_cli(tmp_path, "serve", "--port", "1", config=config)
        else:  # the same command in this process (~1 s of interpreter start-up saved each)
            path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
            r = harness_cli(["--data-dir", str(tmp_path / "data"), "--config", str(path),
                             "serve", "--port", "1"], {"PATH": "/usr/bin:/bin"})
        assert r.returncode != 0, (config, r.stdout, r.stderr)
        assert f"{tmp_path / 'bad.yaml'}: {key}: " in r.stderr, r.stderr
        assert problem in r.stderr, r.stderr
        assert "Traceback" not in r.stderr

"""Issue 16: memory per worker. Workers are forked from a supervisor that built the tokenizer,
so its tables (and the imported program) are shared, not rebuilt per worker."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import httpx
import pytest

from bench.memory import processes, rollup
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config

pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
              pytest.mark.serial]  # alone, after the parallel part of `make test` (Makefile)
MIB = 1024 * 1024


def chat(gw: Gateway, key: str) -> None:
    r = httpx.post(f"{gw.base_url}/v1/chat/completions", timeout=30,
                   headers={"Authorization": f"Bearer {key}"},
                   json={"model": "kimi-k2", "max_tokens": 8,
                         "messages": [{"role": "user", "content": "hello there"}]})
    assert r.status_code == 200, r.text


def workers(gw: Gateway) -> list[int]:
    assert gw.proc is not None
    return [p for role, p in processes(gw.proc.pid) if role == "worker"]


def test_workers_share_the_tokenizer(fake: FakeUpstream, make_gateway: Any) -> None:
    """Spawned workers held 239 MiB each of their own (USS) and 592 MiB PSS in all; forked from
    a supervisor that loaded the tokenizer they hold ~25 MiB each, ~170 MiB in all."""
    gw = make_gateway(fake_config(fake), workers=2)
    key = gw.key(credit="10")
    for _ in range(6):
        chat(gw, key)
    pids = workers(gw)
    assert len(pids) == 2
    assert gw.proc is not None
    every = [rollup(p) for _, p in processes(gw.proc.pid)]
    for pid in pids:
        assert rollup(pid)["uss"] < 80 * MIB, rollup(pid)
    assert sum(m["pss"] for m in every) < 300 * MIB, every

    # a worker that dies is replaced by a fork of the supervisor, which still serves
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = workers(gw)
        if len(now) == 2 and pids[0] not in now:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"worker not replaced: {workers(gw)}")
    time.sleep(2)
    for _ in range(6):
        chat(gw, key)
    assert gw.stop() == 0  # SIGTERM: both workers drain, the supervisor exits cleanly

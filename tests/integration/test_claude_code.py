"""Issue 13: Claude Code's print mode completes a task through the gateway (``--model kimi-k2``,
``ANTHROPIC_BASE_URL`` = the gateway, ``ANTHROPIC_AUTH_TOKEN`` = a SmarToken key) against the
fake upstream: it asks for a file to be written (a tool call), Claude Code writes it and sends
the result back, and the fake answers in text.

Claude Code is installed by ``make agents`` (npm in tests/agents, then its ``install.cjs``, which
npm does not run here); without it this test is skipped and says so."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config

AGENTS = Path(__file__).parents[1] / "agents"
CLAUDE = AGENTS / "node_modules" / "@anthropic-ai" / "claude-code" / "bin" / "claude.exe"


def _installed() -> bool:
    return CLAUDE.is_file() and os.access(CLAUDE, os.X_OK) and CLAUDE.stat().st_size > 10_000


@pytest.mark.skipif(not _installed(), reason="Claude Code is not installed: run `make agents` "
                    "(npm install in tests/agents, then node node_modules/@anthropic-ai/"
                    "claude-code/install.cjs)")
def test_claude_code_print_mode_completes_a_task(fake: FakeUpstream, make_inproc: Any,
                                                 tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    target = work / "hello.txt"
    fake.set(tool_call={"name": "Write", "arguments": json.dumps(
        {"file_path": str(target), "content": "hi from kimi\n"})}, tool_call_once=True,
        content="I wrote hello.txt.", chunks=3)
    gw = make_inproc(fake_config(fake))
    key = gw.key(credit="10")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "ANTHROPIC_BASE_URL": gw.base_url, "ANTHROPIC_AUTH_TOKEN": key,
           "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_AUTOUPDATER": "1"}
    out = subprocess.run([str(CLAUDE), "-p", "Create hello.txt saying hi", "--model", "kimi-k2",
                          "--allowedTools", "Write", "--permission-mode", "acceptEdits"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert "I wrote hello.txt." in out.stdout
    assert target.read_text() == "hi from kimi\n"
    first, last = fake.requests[0], fake.requests[-1]
    assert first["model"] == "kimi-k2-upstream" and first["max_tokens"] == 8192
    assert len(first["tools"]) > 10 and first["stream"] is True
    assert any(m["role"] == "tool" for m in last["messages"])  # the Write result went back
    recs = gw.wait_usage(len(fake.requests))
    assert {r["protocol"] for r in recs} == {"messages"}
    assert all(r["status"] == "ok" and r["cost_micro"] > 0 for r in recs)
    assert key not in out.stdout + out.stderr + gw.log()

"""Codex CLI end to end: ``codex exec`` (a model provider with ``wire_api = "responses"``
pointing at the gateway) runs a shell command the fake upstream asks for and finishes; ``codex
exec resume`` re-sends the whole history. Needs ``make agents`` (npm install of tests/agents);
skipped with the reason when Codex is absent."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.harness import fake_config

CODEX = Path(__file__).resolve().parent.parent / "agents" / "node_modules" / ".bin" / "codex"


@pytest.fixture
def codex() -> Path:
    if not CODEX.exists():
        pytest.skip("Codex CLI not installed: run `make agents` (npm install of @openai/codex "
                    "into tests/agents)")
    return CODEX


def _run(codex: Path, home: Path, work: Path, key: str,
         *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
    env.update(CODEX_HOME=str(home), SMARTOKEN_API_KEY=key, NO_COLOR="1")
    return subprocess.run([str(codex), "exec", "--skip-git-repo-check",
                           "--dangerously-bypass-approvals-and-sandbox", *args],
                          cwd=work, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("dialect", "model", "upstream"), [
    ("openai", "kimi-k2", "kimi-k2-upstream"),
    # thinking on: the fake refuses a tool-call turn sent back without its reasoning_content
    ("deepseek", "deepseek-reasoner", "deepseek-flash"),
])
def test_codex_exec_and_resume_through_the_gateway(
        codex: Path, make_fake: Any, make_inproc: Any, tmp_path: Path, dialect: str,
        model: str, upstream: str) -> None:
    fake = make_fake(dialect=dialect, tool_call={
        "name": "exec_command", "arguments": '{"cmd": "echo codex-was-here > proof.txt"}'},
        tool_call_once=True, content="Wrote proof.txt.", reasoning="Run the command.",
        usage={"prompt_tokens": 900, "completion_tokens": 12})
    gw = make_inproc(fake_config(fake, models={model: {"routes": [
        {"provider": "fake0", "upstream_model": upstream}]}}))
    key = gw.key(credit="5")
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(f'''model = "{model}"
model_provider = "smartoken"

[model_providers.smartoken]
name = "SmarToken"
base_url = "{gw.base_url}/v1"
env_key = "SMARTOKEN_API_KEY"
wire_api = "responses"
''')
    run = _run(codex, home, work, key, "Write codex-was-here into proof.txt")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (work / "proof.txt").read_text().strip() == "codex-was-here"
    assert "Wrote proof.txt." in run.stdout
    second = fake.requests[-1]
    assert second["messages"][-1]["role"] == "tool"
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "exec_command"
    if dialect == "deepseek":
        assert second["messages"][-2]["reasoning_content"] == "Run the command."
    recs = gw.wait_usage(2)
    assert [r["status"] for r in recs] == ["ok", "ok"] and all(r["stream"] for r in recs)
    assert all(r["protocol"] == "responses" for r in recs)

    resume = _run(codex, home, work, key, "resume", "--last", "Anything else?")
    assert resume.returncode == 0, resume.stderr[-2000:]
    assert "Wrote proof.txt." in resume.stdout
    [history] = [r["messages"] for r in fake.requests
                 if r["messages"][-1]["content"] == "Anything else?"]
    roles = [m["role"] for m in history]
    assert roles[-5:] == ["user", "assistant", "tool", "assistant", "user"], roles
    assert history[-2]["content"] == "Wrote proof.txt."
    assert len(gw.wait_usage(3)) == 3

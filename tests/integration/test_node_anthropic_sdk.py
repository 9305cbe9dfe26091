"""Issue 13: the official @anthropic-ai/sdk npm package against /v1/messages of a live gateway
(fake upstream): create with thinking, stream, a tools round trip, count_tokens and errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import exclusive, fake_config

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


@pytest.fixture(scope="module")
def node_sdk() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed")
    with exclusive(NODE_DIR):  # the other module installs into the same folder
        if not (NODE_DIR / "node_modules" / "@anthropic-ai" / "sdk").is_dir():
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"],
                           cwd=NODE_DIR, check=True, timeout=300, capture_output=True)
    return NODE_DIR


def test_anthropic_npm_package(node_sdk: Path, fake: FakeUpstream, make_inproc: Any) -> None:
    # The fake answers the request with tools by a call, every other one in text.
    fake.set(content="Sunny and mild", reasoning="Check the sky.", chunks=4,
             usage={"prompt_tokens": 30, "completion_tokens": 5}, tool_call_once=True,
             tool_call={"name": "get_weather", "arguments": '{"city": "Beijing"}'})
    gw = make_inproc(fake_config(fake))
    key = gw.key(credit="5")
    run = subprocess.run(["node", "anthropic_check.mjs", gw.base_url, key], cwd=node_sdk,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["create"]["model"] == "kimi-k2" and out["create"]["types"] == ["thinking", "text"]
    assert out["create"]["text"] == "Sunny and mild" and out["create"]["stop"] == "end_turn"
    assert out["create"]["thinking"] == "Check the sky."
    assert out["create"]["usage"]["input_tokens"] == 30
    assert out["create"]["usage"]["output_tokens"] == 5
    assert {"message_start", "content_block_start", "content_block_delta",
            "content_block_stop", "message_delta", "message_stop"} <= set(out["stream"]["events"])
    assert out["stream"]["streamed"] == "Sunny and mild" and out["stream"]["output"] == 5
    assert out["tool"] == {"stop": "tool_use", "name": "get_weather",
                           "input": {"city": "Beijing"}}
    assert out["toolBack"] == ["thinking", "text"]
    assert out["count"] > 0
    assert out["notFound"] == {"status": 404, "type": "not_found_error", "isNotFound": True}
    assert out["badKey"] == {"status": 401, "type": "authentication_error", "isAuth": True}
    recs = gw.wait_usage(4)
    assert {r["protocol"] for r in recs} == {"messages"}

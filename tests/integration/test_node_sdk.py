"""The official openai npm package against a live gateway (embedded default, demo provider)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.harness import exclusive

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


@pytest.fixture(scope="module")
def node_sdk() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed")
    with exclusive(NODE_DIR):  # the other module installs into the same folder
        if not (NODE_DIR / "node_modules" / "openai").is_dir():
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"],
                           cwd=NODE_DIR, check=True, timeout=300, capture_output=True)
    return NODE_DIR


def test_openai_npm_package(node_sdk: Path, make_inproc: Any) -> None:
    gw = make_inproc()
    key = gw.key(credit="5")
    run = subprocess.run(["node", "sdk_check.mjs", gw.base_url + "/v1", key], cwd=node_sdk,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["text"].startswith("[demo]") and "Explain the best use case" in out["text"]
    assert out["streamed"] == out["text"]
    assert out["usage"]["completion_tokens"] == out["streamUsage"]["completion_tokens"] > 0
    assert out["notFound"] == {"status": 404, "code": "model_not_found", "isNotFound": True}
    assert out["badKey"] == {"status": 401, "isAuth": True}
    assert "kimi-k2" in out["models"]
    recs = gw.wait_usage(2)
    assert [r["status"] for r in recs] == ["ok", "ok"]


def test_openai_npm_responses_and_vercel_ai_sdk(node_sdk: Path, make_inproc: Any) -> None:
    """node ``openai`` responses.create/stream/previous_response_id and the Vercel AI SDK's
    default ``openai(model)`` (the Responses API), generate and stream."""
    with exclusive(node_sdk):
        if not (node_sdk / "node_modules" / "@ai-sdk" / "openai").is_dir():
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"],
                           cwd=node_sdk, check=True, timeout=300, capture_output=True)
    gw = make_inproc()
    key = gw.key(credit="5")
    run = subprocess.run(["node", "responses_check.mjs", gw.base_url + "/v1", key],
                         cwd=node_sdk, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["text"].startswith("[demo]") and out["usage"]["output_tokens"] > 0
    assert out["streamed"].startswith("[demo]")
    assert out["firstLast"] == ["response.created", "response.completed"]
    assert out["streamUsage"]["output_tokens"] > 0
    assert out["followPrev"] == out["id"]
    assert out["aiText"].startswith("[demo]") and out["aiUsage"]["outputTokens"] > 0
    assert out["aiStreamed"].startswith("[demo]") and out["aiStreamUsage"]["outputTokens"] > 0
    assert out["notFound"] == {"status": 404, "code": "model_not_found"}
    recs = gw.wait_usage(5)
    assert [r["status"] for r in recs] == ["ok"] * 5

"""Playground defects of issue 17, in Chromium: no polling of the usage record (none after a
refusal, one request per answer), reasoning shown apart and never sent back, *View code*
shows the request that was sent."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import add_user, sign_in
from tests.console.inproc_console import InprocConsole
from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config

REASONING = "Let me weigh it carefully."
ANSWER = "The answer is 42."


@pytest.fixture
def pg_gw(tmp_path: Path) -> Iterator[tuple[InprocConsole, FakeUpstream]]:
    fake = FakeUpstream(dialect="deepseek", reasoning=REASONING, content=ANSWER,
                        chunks=4).start()
    gw = InprocConsole(tmp_path, fake_config(fake)).start()
    yield gw, fake
    gw.stop()
    fake.stop()


def _usage_reads(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/console/api/usage/" in r.url else None)
    return seen


def _send(page: Page, text: str) -> Any:
    page.fill("#pg-prompt", text)
    page.click("#pg-send")
    return page.locator(".msg-assistant").last


def test_playground_reasoning_history_polling_and_view_code(
        pg_gw: tuple[InprocConsole, FakeUpstream], new_page: Callable[..., Page]) -> None:
    gw, fake = pg_gw
    add_user(gw, "alice", "pw-alice-123456", credit="5")
    page = new_page(gw)
    sign_in(page, "alice", "pw-alice-123456")
    page.goto("/console/playground?model=kimi-k2")
    reads = _usage_reads(page)

    first = _send(page, "What is six times seven?")
    expect(first).to_have_class(re.compile(r"\bbilled\b"), timeout=20_000)
    assert first.locator(".msg-text").inner_text() == ANSWER  # reasoning kept apart
    reasoning = first.locator(".msg-reasoning")
    expect(reasoning).to_be_visible()
    assert REASONING in (reasoning.text_content() or "")
    assert reasoning.get_attribute("open") is None  # collapsed once the answer came
    time.sleep(0.5)
    assert len(reads) == 1, reads  # one read of the record, no polling

    second = _send(page, "And times eight?")
    expect(second).to_have_class(re.compile(r"\bbilled\b"), timeout=20_000)
    sent = fake.requests[-1]["messages"]
    assistant = [m for m in sent if m["role"] == "assistant"]
    assert [m["content"] for m in assistant] == [ANSWER]
    assert all("reasoning_content" not in m for m in sent)

    # View code with an empty prompt: the request just sent, not one ending with the reply.
    page.click("#view-code")
    pane = page.locator("#code-modal pre[data-pane=curl]")
    expect(pane).to_contain_text("chat/completions")
    curl = pane.inner_text()
    body = json.loads(curl.split("-d '", 1)[1].rsplit("'", 1)[0])
    assert body["messages"][-1] == {"role": "user", "content": "And times eight?"}
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert not page.js_errors  # type: ignore[attr-defined]


def test_refused_request_reads_no_usage_record(
        pg_gw: tuple[InprocConsole, FakeUpstream], new_page: Callable[..., Page]) -> None:
    gw, _ = pg_gw
    add_user(gw, "broke", "pw-broke-123456", credit="0")
    page = new_page(gw)
    sign_in(page, "broke", "pw-broke-123456")
    page.goto("/console/playground?model=kimi-k2")
    reads = _usage_reads(page)
    page.fill("#pg-prompt", "hello")
    page.click("#pg-send")
    expect(page.locator("#pg-error")).to_be_visible()
    time.sleep(1.5)  # the old page polled every 150 ms after a 402
    assert reads == []

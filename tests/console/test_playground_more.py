"""The playground of issue 17 in Chromium: safe Markdown (no raw HTML; code blocks with a copy
button), two models side by side with their own stats, the JSON and tools switches, and a file
attached through the Files API and read by the model."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import add_user, sign_in
from tests.console.inproc_console import InprocConsole
from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config

ANSWER = ("Here is **bold** and `x = 1`.\n\n```python\nprint('hi')\n```\n\n"
          "<script>window.pwnedA = 1</script><img src=x onerror=\"window.pwnedB = 2\">\n\n"
          "- one\n- [a link](https://example.com)\n- [bad](javascript:alert(1))")


@pytest.fixture
def md_gw(tmp_path: Path) -> Iterator[tuple[InprocConsole, FakeUpstream]]:
    fake = FakeUpstream(content=ANSWER, chunks=6).start()
    gw = InprocConsole(tmp_path, fake_config(fake)).start()
    yield gw, fake
    gw.stop()
    fake.stop()


def test_markdown_compare_switches_and_attachment(
        md_gw: tuple[InprocConsole, FakeUpstream], new_page: Callable[..., Page],
        tmp_path: Path) -> None:
    gw, fake = md_gw
    add_user(gw, "mia", "pw-mia-12345678", credit="5")
    page = new_page(gw)
    sign_in(page, "mia", "pw-mia-12345678")
    page.goto("/console/playground?model=kimi-k2")

    page.fill("#pg-prompt", "show me markdown")
    page.click("#pg-send")
    answer = page.locator(".msg-assistant").last
    expect(answer).to_have_class(re.compile(r"\bbilled\b"), timeout=20_000)
    text = answer.locator(".msg-text")
    assert text.locator("strong").inner_text() == "bold"
    assert text.locator("code.md-code").inner_text() == "x = 1"
    assert text.locator(".md-pre pre code").inner_text() == "print('hi')"
    expect(text.locator(".md-pre .md-copy")).to_be_visible()
    assert text.locator("script, img, iframe").count() == 0  # raw HTML is text, never parsed
    assert "<script>" in text.inner_text()
    assert page.evaluate("[window.pwnedA, window.pwnedB]") == [None, None]
    links = text.locator("a")
    assert links.count() == 1 and links.get_attribute("href") == "https://example.com"
    assert "[bad](javascript:alert(1))" in text.inner_text()

    # Two models side by side on the same prompt, each with its own stats.
    page.select_option("#pg-compare", "demo")
    page.check("#pg-json")
    page.check("#pg-tools")
    note = tmp_path / "note.txt"
    note.write_text("The launch code is PINEAPPLE-42.", encoding="utf-8")
    page.set_input_files("#pg-file", str(note))
    expect(page.locator("#pg-attached .chip")).to_contain_text("note.txt")
    page.fill("#pg-prompt", "compare")
    page.click("#pg-send")
    pair = page.locator(".pg-pair").last
    expect(pair.locator(".msg-assistant")).to_have_count(2)
    for m in ("kimi-k2", "demo"):
        one = pair.locator(f".msg-assistant[data-model='{m}']")
        expect(one).to_have_class(re.compile(r"\bbilled\b"), timeout=20_000)
        for stat in ("tokens", "cost", "latency", "ttft"):
            expect(one.locator(f"[data-stat={stat}] b")).not_to_have_text("…")
    sent = fake.requests[-1]
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert "PINEAPPLE-42" in str(sent["messages"][-1]["content"])  # the file's text
    rows = gw.wait_usage(3)  # the first answer, then one record per model of the pair
    assert sorted(r["requested_model"] for r in rows) == ["demo", "kimi-k2", "kimi-k2"]
    expect(page.locator("#pg-attached .chip")).to_have_count(0)  # sent once
    assert not page.js_errors  # type: ignore[attr-defined]

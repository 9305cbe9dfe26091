"""The console's model table and pages show each price's as-of date and source (issue 14),
and an imported price with its new date."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.console.conftest import add_user, http_session
from tests.moneykit import MASTER


def _row(html: str, model: str) -> str:
    match = re.search(rf'<tr data-model="{re.escape(model)}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, model
    return match.group(1)


def test_model_table_and_pages_show_when_each_price_was_read(make_inproc: Any) -> None:
    gw = make_inproc(env={"SMARTOKEN_MASTER_KEY": MASTER})
    add_user(gw, "viewer", "pw-viewer-123456")
    client, _ = http_session(gw, "viewer", "pw-viewer-123456")
    table = client.get("/console/models").text
    assert "Prices as of" in table
    kimi = _row(table, "kimi-k2.6")
    assert "2026-12-01" in kimi and 'href="https://platform.kimi.com/docs/pricing/chat-k26"' in kimi
    assert "unverified" in _row(table, "ernie-4.5")
    assert "time-of-day prices" in _row(table, "deepseek-flash")
    page = client.get("/console/models/deepseek-flash").text
    assert "Time-of-day price" in page and "Asia/Shanghai" in page
    assert "deepseek-peak: 09:00–12:00 Asia/Shanghai: $0.30 / $1.20" in page
    # an import brings its own date
    doc = {"models": {"kimi-k2.6": {"family": "kimi", "context_window": 262144,
                                    "price": {"input": "1", "output": "4", "source": {
                                        "url": "https://example.com/p", "as_of": "2026-12-24"}}}}}
    r = httpx.put(gw.base_url + "/admin/catalog", params={"merge": "true"}, json=doc,
                  headers={"authorization": f"Bearer {MASTER}"}, timeout=15)
    assert r.status_code == 200, r.text
    kimi = _row(client.get("/console/models").text, "kimi-k2.6")
    assert "2026-12-24" in kimi and "https://example.com/p" in kimi
    assert "2026-12-24" in client.get("/console/models/kimi-k2").text  # the alias follows

"""Console defects a newcomer met (issue 17), over HTTP against an in-process gateway: the
model page names the route that answers and compares like with like; money and time read the
same way on every page; a fresh answer's usage record is read at once."""

from __future__ import annotations

import re
from typing import Any

from smartoken.console.http import ms
from tests.console.conftest import add_user, http_session

PW = "pw-newcomer-123456"


def test_model_page_names_the_answering_route_and_compares_one_model_per_family(
        make_inproc: Any) -> None:
    gw = make_inproc()
    add_user(gw, "nina", PW)
    client, _ = http_session(gw, "nina", PW)
    page = client.get("/console/models/kimi-k2").text
    # No vendor key: the demo route answers, and the page says so (not "Moonshot AI").
    answerer = re.search(r'<strong id="answerer">(.*?)</strong><span>(.*?)</span>', page, re.S)
    assert answerer and answerer.group(1) == "SmarToken demo provider"
    assert "<code>kimi-k2" in answerer.group(2)
    assert "demo/kimi-k2" in page
    cards = re.findall(r'class="compare-item" href="/console/models/([^"]+)"', page)
    assert len(cards) == 4  # one row of the 4-column grid: no orphan card
    table = client.get("/console/models").text
    families = {m: re.search(rf'<tr data-model="{re.escape(m)}"[^>]*data-family="([^"]+)"',
                             table) for m in cards}
    fams = [f.group(1) for f in families.values() if f]
    assert len(fams) == 4 and len(set(fams)) == 4 and "kimi" not in fams


def test_money_time_and_fresh_usage_read_consistently(make_inproc: Any) -> None:
    gw = make_inproc(config={"ledger_flush_ms": 60_000})  # records stay queued in the writer
    add_user(gw, "olga", PW, credit="25")
    client, csrf = http_session(gw, "olga", PW)
    r = client.post("/console/api/playground", headers={"x-csrf-token": csrf}, json={
        "model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16})
    assert r.status_code == 200 and "[DONE]" in r.text
    rid = r.headers["x-request-id"]
    got = client.get(f"/console/api/usage/{rid}", timeout=5)
    assert got.status_code == 200 and got.json()["found"] is True  # from the writer's queue
    assert got.json()["cost_micro"] > 0
    add_user(gw, "peer", PW)
    peer, _ = http_session(gw, "peer", PW)
    assert peer.get(f"/console/api/usage/{rid}", timeout=10).status_code == 404  # not theirs

    dash = client.get("/console/").text
    amounts = re.findall(r'<span class="usd" title="\$[0-9.,-]+">-?\$([0-9,]+\.[0-9]+)</span>',
                         dash)
    assert amounts and all(len(a.split(".")[1]) == 4 for a in amounts), amounts
    assert "Spent this month" in dash and "Spent in" not in dash
    assert re.search(r'id="month-requests">\d+ requests in \d{4}-\d{2}<', dash)
    assert "30 days</span>" not in dash


def test_durations_under_a_millisecond_are_not_zero() -> None:
    assert ms(0) == "< 1 ms" and ms(1) == "1 ms" and ms(1234) == "1,234 ms" and ms(None) == "—"

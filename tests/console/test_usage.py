"""The usage log over HTTP: paging, filters (key, model, status, date range) and CSV export
agree with the ledger; the wallet page lists the debits."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx

from smartoken.money import format_usd
from tests.console.conftest import admin_password, http_session
from tests.harness import Gateway


def test_usage_paging_filters_and_csv(console_gw: Gateway) -> None:
    gw = console_gw
    key_a = gw.key(account="admin")
    key_b = gw.key(account="admin")
    a, b = gw.client(key_a), gw.client(key_b)
    msg = [{"role": "user", "content": "count"}]
    for _ in range(52):
        a.chat.completions.create(model="demo", max_tokens=2, messages=msg)
    for _ in range(3):
        b.chat.completions.create(model="kimi-k2", max_tokens=2, messages=msg)
    rows = gw.wait_usage(55)
    assert len(rows) == 55
    client, _ = http_session(gw, "admin", admin_password(gw))

    page1 = client.get("/console/usage").text
    assert "Page 1 of 2" in page1 and page1.count("data-request-id=") == 50
    page2 = client.get("/console/usage?page=2").text
    assert page2.count("data-request-id=") == 5
    ids = {r["id"] for r in rows}
    shown = {i for i in ids if f'data-request-id="{i}"' in page1 + page2}
    assert shown == ids  # every record exactly on one of the two pages

    kb = gw.key_ids[key_b]
    only_b = client.get(f"/console/usage?key={kb}").text
    assert only_b.count("data-request-id=") == 3 and "Page 1 of 1" in only_b
    only_kimi = client.get("/console/usage?model=kimi-k2").text
    assert only_kimi.count("data-request-id=") == 3
    assert client.get("/console/usage?status=upstream_error").text.count(
        "data-request-id=") == 0
    today = datetime.now(UTC).date()
    past = (today - timedelta(days=3)).isoformat()
    assert client.get(f"/console/usage?from={past}&to={past}").text.count(
        "data-request-id=") == 0
    assert client.get(f"/console/usage?from={past}&to={today.isoformat()}&model=kimi-k2"
                      ).text.count("data-request-id=") == 3

    r = client.get(f"/console/usage.csv?model=kimi-k2&key={kb}")
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert len(table) == 3
    by_id = {x["id"]: x for x in rows}
    for line in table:
        rec = by_id[line["id"]]
        assert line["cost"] == format_usd(rec["cost_micro"])
        assert line["created_at"].endswith("Z")  # UTC, with its zone
        assert int(line["prompt_tokens"]) == rec["prompt_tokens"]
        assert line["requested_model"] == "kimi-k2" and int(line["key_id"]) == kb
    # The console's export and the admin API's: the same columns in the same order.
    admin_csv = httpx.get(f"{gw.base_url}/admin/usage.csv", headers={
        "authorization": f"Bearer {gw.key(account='admin')}"}).text
    assert r.text.splitlines()[0] == admin_csv.splitlines()[0]
    full = list(csv.DictReader(io.StringIO(client.get("/console/usage.csv").text)))
    assert len(full) == 55  # the export is not limited to one page

    wallet = client.get("/console/wallet").text
    total = sum(r["cost_micro"] for r in rows)
    assert wallet.count(">debit<") == 50  # one page of 50 transactions
    [bal] = gw.sql("SELECT balance_micro FROM wallets JOIN accounts ON accounts.id = "
                   "wallets.account_id WHERE accounts.name = 'admin'")
    assert bal["balance_micro"] == 100_000_000 - total
    assert "Older" in wallet and client.get("/console/wallet?page=2").text.count(
        ">debit<") == 5

"""Refused requests (issue 17): a request refused before routing leaves no usage record and no
cost; the console's usage page lists it for its account (status, code, message), and another
account does not see it."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from tests.console.conftest import add_user, http_session

PW = "pw-refused-1234567"


def test_refused_requests_are_listed_without_cost(make_inproc: Any) -> None:
    gw = make_inproc()
    add_user(gw, "rex", PW)  # no credit
    key = gw.key(account="rex", name="empty-wallet")
    client = gw.client(key, max_retries=0)
    with pytest.raises(openai.APIStatusError) as broke:
        client.chat.completions.create(model="kimi-k2", messages=[
            {"role": "user", "content": "hi"}])
    assert broke.value.status_code == 402
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[
            {"role": "user", "content": "hi"}])
    assert gw.usage() == []  # refused: no usage record
    console, _ = http_session(gw, "rex", PW)
    deadline = time.monotonic() + 5
    while True:
        page = console.get("/console/usage").text
        if page.count("data-refused-id=") >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    table = page.split('id="refused-table"', 1)[1].split("</table>", 1)[0]
    assert table.count("data-refused-id=") == 2
    assert "insufficient_balance" in table and "model_not_found" in table
    assert "402" in table and "404" in table and "empty-wallet" in table
    assert "<th>Cost" not in table and "class=\"num cost\"" not in table  # no cost column
    add_user(gw, "sam", PW)
    other, _ = http_session(gw, "sam", PW)
    assert "data-refused-id=" not in other.get("/console/usage").text

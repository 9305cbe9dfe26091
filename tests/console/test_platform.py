"""The admins' platform dashboard (issue 17): spend per account, model and route over every
account; the totals agree with the ledger; users cannot open it."""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import add_user, http_session

PW = "pw-platform-123456"


def test_platform_dashboard_spend_per_account_model_route(make_inproc: Any) -> None:
    gw = make_inproc()
    add_user(gw, "boss", PW, role="admin")
    add_user(gw, "ann", PW)
    for account, model, n in (("ann", "kimi-k2", 2), ("bob", "deepseek-chat", 1)):
        client = gw.client(gw.key(account=account, credit="5"))
        for _ in range(n):
            client.chat.completions.create(model=model, max_tokens=8,
                                           messages=[{"role": "user", "content": "hi"}])
    rows = gw.wait_usage(3)
    admin, _ = http_session(gw, "boss", PW)
    page = admin.get("/console/admin/platform").text

    def table(tid: str) -> dict[str, str]:
        body = page.split(f'id="{tid}"', 1)[1].split("</table>", 1)[0]
        return dict(re.findall(r'<tr data-name="([^"]*)">(.*?)</tr>', body, re.S))

    accounts = table("platform-accounts")
    assert set(accounts) == {"ann", "bob"}
    ann_cost = sum(r["cost_micro"] for r in rows if r["requested_model"] == "kimi-k2")
    assert f'title="${ann_cost / 1e6:.6f}"' in accounts["ann"]  # exact spend in the tooltip
    assert set(table("platform-models")) == {"kimi-k2", "deepseek-chat"}
    assert set(table("platform-routes")) == {r["route"] for r in rows}
    user, _ = http_session(gw, "ann", PW)
    assert user.get("/console/admin/platform").status_code == 403

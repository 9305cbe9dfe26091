"""Issue 15, alerts: low-balance and key-budget alerts cross by real, settled spend, fire once
per window (under concurrency and across two gateways sharing one PostgreSQL), reset with the
next window, travel by signed webhook and mail off the request path, and are retried."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.fakes.hooks import WebhookReceiver
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.mailbox import Mailbox
from tests.moneykit import (
    MASTER,
    MAX_TOKENS,
    MESSAGES,
    AdminAPI,
    assert_invariants,
    exact_usage,
    usd,
    worst_case,
)
from tests.services import pg_url, redis_prefix  # noqa: F401  (fixtures)

COST = worst_case()  # what each request below costs: the fake reports the worst case


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    with Mailbox() as box:
        yield box


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    f = FakeUpstream(usage=exact_usage()).start()
    yield f
    f.stop()


def env(smtp: Mailbox | None = None, **more: str) -> dict[str, str]:
    out = {"SMARTOKEN_MASTER_KEY": MASTER, "SMARTOKEN_ALERT_RETRY_S": "0.2,0.2,0.2",
           "SMARTOKEN_ALERT_TIMEOUT_S": "1", **more}
    if smtp is not None:
        out["SMARTOKEN_SMTP_URL"] = smtp.url
    return out


def ask(gw: Gateway, key: str, n: int = 1) -> int:
    """``n`` requests one after another; how many were answered."""
    ok = 0
    for _ in range(n):
        try:
            gw.client(key).chat.completions.create(model="kimi-k2", messages=MESSAGES,
                                                   max_tokens=MAX_TOKENS)
            ok += 1
        except openai.APIStatusError:
            pass
    return ok


async def _burst(gws: list[Gateway], key: str, n: int) -> int:
    clients = [g.async_client(key) for g in gws]

    async def one(i: int) -> bool:
        try:
            await clients[i % len(clients)].chat.completions.create(
                model="kimi-k2", messages=MESSAGES, max_tokens=MAX_TOKENS)
            return True
        except openai.APIStatusError:
            return False

    try:
        return sum(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        for c in clients:
            await c.close()


def burst(gws: list[Gateway], key: str, n: int) -> int:
    return asyncio.run(_burst(gws, key, n))


def events(gw: Gateway, **where: Any) -> list[dict[str, Any]]:
    clause = " AND ".join(f"{k} = :{k}" for k in where) or "1=1"
    return gw.sql(f"SELECT * FROM alert_events WHERE {clause} ORDER BY id", **where)


def wait_events(gw: Gateway, n: int, timeout: float = 10, **where: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows = events(gw, **where)
    while len(rows) < n and time.monotonic() < deadline:
        time.sleep(0.05)
        rows = events(gw, **where)
    return rows


def settle(gw: Gateway, seconds: float = 1.0) -> None:
    """Give the ledger and the watcher time to act on what was spent (nothing must fire)."""
    time.sleep(seconds)


def setup_account(gw: Gateway, hook: WebhookReceiver, credit_micro: int,
                  **alerts: Any) -> tuple[int, str, AdminAPI]:
    admin = AdminAPI(gw)
    account = admin.account("alice", credit=usd(credit_micro))
    key, _ = admin.key(account, name="main")
    api = AdminAPI(gw, key)
    view = api.ok(api.patch("/account/alerts", {"webhook_url": hook.url, **alerts}))
    hook.secret = view["webhook_secret"]
    assert hook.secret.startswith("whsec_") and view["webhook_secret_set"] is True
    assert "webhook_secret" not in api.ok(api.get("/account/alerts"))  # shown once
    return account, key, api


def test_low_balance_fires_once_until_the_balance_is_back(
        make_inproc: Any, upstream: FakeUpstream, hook: WebhookReceiver, smtp: Mailbox) -> None:
    gw = make_inproc(fake_config(upstream), env=env(smtp))
    account, key, api = setup_account(gw, hook, 10 * COST, email="ops@example.com",
                                      low_balance_threshold=usd(5 * COST + COST // 2))
    assert ask(gw, key, 4) == 4  # 6 x COST left: above the threshold
    settle(gw)
    assert events(gw) == [] and hook.received == []
    assert ask(gw, key, 1) == 1  # 5 x COST: below
    [got] = hook.wait(1)
    assert got.valid, got.headers
    event = got.event
    assert event["type"] == "balance.low" and event["account_id"] == account
    assert event["data"] == {"threshold": usd(5 * COST + COST // 2), "balance": usd(5 * COST)}
    assert got.headers["x-smartoken-event"] == "balance.low"
    mail = smtp.wait_for("ops@example.com")
    assert mail.subject == f"SmarToken: your balance is below ${usd(5 * COST + COST // 2)}"
    assert f"${usd(5 * COST)}" in mail.text
    assert ask(gw, key, 3) == 3  # further below: no second alert
    settle(gw)
    assert len(hook.received) == 1 and len(events(gw)) == 1 and len(smtp.mails) == 1
    # Back above the threshold (a credit), then below again: a second alert.
    AdminAPI(gw).credit(account, usd(4 * COST))  # 2 + 4 = 6 x COST
    deadline = time.monotonic() + 10
    while events(gw)[0]["period"] == "open" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert events(gw)[0]["period"].startswith("closed:")
    assert ask(gw, key, 1) == 1
    assert len(hook.wait(2)) == 2 and all(d.valid for d in hook.received)
    smtp.wait_for("ops@example.com", count=2)
    rows = wait_events(gw, 2)
    assert [r["period"] for r in rows][1] == "open" and len(rows) == 2
    history = api.ok(api.get("/account/alerts/events"))["data"]
    assert [h["type"] for h in history] == ["balance.low", "balance.low"]
    assert history[0]["email_state"] == history[0]["webhook_state"] == "sent"
    assert history[0]["webhook"] == f"http://127.0.0.1:{hook.port}"  # no path: may hold a token
    assert "path-secret" not in str(history) and hook.secret not in gw.log()
    assert "path-secret" not in gw.log()
    assert_invariants(gw, account)

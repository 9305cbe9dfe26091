"""Issue 15, alerts: low-balance and key-budget alerts cross by real, settled spend, fire once
per window (under concurrency and across two gateways sharing one PostgreSQL), reset with the
next window, travel by signed webhook and mail off the request path, and are retried."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import text

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


def execute(gw: Gateway, statement: str, **params: Any) -> None:
    async def go(engine: Any) -> None:
        async with engine.begin() as conn:
            await conn.execute(text(statement), params)

    gw.db(go)


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


def _budget_setup(gw: Gateway, hook: WebhookReceiver) -> tuple[int, str, int]:
    """alice: 100 x COST credited, low balance alert at 95 x COST; a key with a daily budget of
    10 x COST and a monthly one of 12 x COST. Returns (account, budget key, its id)."""
    account, _, _ = setup_account(gw, hook, 100 * COST, low_balance_threshold=usd(95 * COST))
    key, key_id = AdminAPI(gw).key(account, name="batch", daily_budget=usd(10 * COST),
                                   monthly_budget=usd(12 * COST))
    return account, key, key_id


EXPECTED = {("key_daily", 80), ("key_daily", 100), ("key_monthly", 80),
            ("low_balance", 95 * COST)}


@pytest.mark.parametrize("replicas", ["one", "two-on-postgresql"])
def test_each_alert_fires_once_under_50_concurrent_requests(
        make_inproc: Any, upstream: FakeUpstream, hook: WebhookReceiver, replicas: str,
        request: pytest.FixtureRequest) -> None:
    if replicas == "one":
        gws = [make_inproc(fake_config(upstream), env=env())]
    else:
        shared = {"SMARTOKEN_DATABASE_URL": str(request.getfixturevalue("pg_url")),
                  "SMARTOKEN_RESERVER": "sql"}
        gws = [make_inproc(fake_config(upstream), env=env(**shared)) for _ in range(2)]
    account, key, key_id = _budget_setup(gws[0], hook)
    served = burst(gws, key, 50)
    assert served == 10  # the daily budget: 10 requests of COST
    hook.wait(4)
    settle(gws[0], 1.5)
    rows = events(gws[0])
    assert {(r["kind"], r["threshold"]) for r in rows} == EXPECTED and len(rows) == 4
    assert len(hook.received) == 4 and all(d.valid for d in hook.received)
    assert sorted(d.event["type"] for d in hook.received) == [
        "balance.low", "key.budget.daily", "key.budget.daily", "key.budget.monthly"]
    daily = [d.event["data"] for d in hook.received if d.event["type"] == "key.budget.daily"]
    assert {d["percent"] for d in daily} == {80, 100}
    assert all(d["key_id"] == key_id and d["budget"] == usd(10 * COST) for d in daily)
    assert {d.headers["x-smartoken-delivery"] for d in hook.received} == {
        f"alert_{r['id']}" for r in rows}
    # More spend in the same windows (another key, same account): nothing fires again.
    other, _ = AdminAPI(gws[0]).key(account, name="other")
    assert burst(gws, other, 10) == 10
    settle(gws[0], 1.5)
    assert len(events(gws[0])) == 4 and len(hook.received) == 4
    assert_invariants(gws[0], account)


def test_key_budget_alerts_reset_with_the_next_day(
        make_inproc: Any, upstream: FakeUpstream, hook: WebhookReceiver, tmp_path: Any) -> None:
    clock = tmp_path / "clock"
    noon = 1_780_000_000 - 1_780_000_000 % 86400 + 43200  # some day at 12:00 UTC
    clock.write_text(str(noon))
    gw = make_inproc(fake_config(upstream), env=env(SMARTOKEN_TEST_CLOCK_FILE=str(clock)))
    account, _, _ = setup_account(gw, hook, 100 * COST)
    key, _ = AdminAPI(gw).key(account, name="daily", daily_budget=usd(2 * COST))
    assert ask(gw, key, 3) == 2
    first = [r["period"] for r in wait_events(gw, 2)]
    assert len(first) == 2 and len(set(first)) == 1
    clock.write_text(str(noon + 86400))  # the next day
    assert ask(gw, key, 3) == 2
    rows = wait_events(gw, 4)
    assert len(rows) == 4
    assert sorted({r["period"] for r in rows}) == sorted(
        {first[0], rows[-1]["period"]}) and rows[-1]["period"] > first[0]
    assert {(r["kind"], r["threshold"]) for r in rows[2:]} == {("key_daily", 80),
                                                               ("key_daily", 100)}
    assert len(hook.wait(4)) == 4


def test_a_slow_receiver_never_slows_requests_and_is_retried(
        make_inproc: Any, upstream: FakeUpstream, hook: WebhookReceiver) -> None:
    gw = make_inproc(fake_config(upstream), env=env())
    hook.delay = 2.5  # longer than the 1 s delivery timeout
    account, key, _api = setup_account(gw, hook, 10 * COST,
                                      low_balance_threshold=usd(9 * COST + 1))
    assert ask(gw, key, 1) == 1  # crosses: the first attempt hangs on the receiver
    wait_events(gw, 1)
    deadline = time.monotonic() + 10
    while events(gw)[0]["attempts"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    latencies = []
    for _ in range(5):  # while the receiver hangs
        t0 = time.perf_counter()
        assert ask(gw, key, 1) == 1
        latencies.append(time.perf_counter() - t0)
    assert max(latencies) < 0.9, latencies  # never waits for the webhook (1 s timeout)
    hook.delay = 0.0  # the receiver recovers: a retry gets through
    deadline = time.monotonic() + 15
    while not events(gw)[0]["done"] and time.monotonic() < deadline:
        time.sleep(0.05)
    [row] = events(gw)
    assert row["done"] and row["webhook_state"] == "sent" and row["attempts"] >= 2, row
    assert row["last_error"] is None
    time.sleep(2.6)  # the timed-out attempts reach the receiver late: the same delivery id
    assert {d.headers["x-smartoken-delivery"] for d in hook.received} == {f"alert_{row['id']}"}
    assert all(d.valid for d in hook.received)
    assert_invariants(gw, account)


def test_a_receiver_that_is_down_is_retried_then_given_up(
        make_inproc: Any, upstream: FakeUpstream, hook: WebhookReceiver) -> None:
    gw = make_inproc(fake_config(upstream), env=env())
    _account, key, api = setup_account(gw, hook, 10 * COST,
                                      low_balance_threshold=usd(9 * COST + 1))
    hook.stop()  # nothing listens on its port any more
    t0 = time.perf_counter()
    assert ask(gw, key, 2) == 2
    assert time.perf_counter() - t0 < 2
    deadline = time.monotonic() + 15
    while not (events(gw) and events(gw)[0]["done"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    [row] = events(gw)
    assert row["done"] and row["webhook_state"] == "failed" and row["attempts"] == 4, row
    assert "unreachable" in row["last_error"] and "path-secret" not in row["last_error"]
    [view] = api.ok(api.get("/account/alerts/events"))["data"]
    assert view["webhook_state"] == "failed" and view["attempts"] == 4
    assert "path-secret" not in gw.log() and hook.secret not in gw.log()


BAD_FIELDS: list[dict[str, Any]] = [
    {"webhook_url": "http://169.254.169.254/latest/meta-data"},  # private: egress policy
    {"webhook_url": "http://10.1.2.3/hook"},
    {"webhook_url": "ftp://example.com/hook"},
    {"webhook_url": "javascript:alert(1)"},
    {"webhook_url": "http://user:pw@example.com/hook"},
    {"webhook_url": "http://example.com/\u00e9"},
    {"webhook_url": "http://example.com/a\nb"},
    {"webhook_url": "http://example.com:99999/"},
    {"webhook_url": "http://example.com/" + "a" * 3000},
    {"webhook_url": 5},
    {"webhook_url": "http://example.com/\x00"},
    {"low_balance_threshold": "-1"},
    {"low_balance_threshold": "0"},
    {"low_balance_threshold": 1.5},
    {"low_balance_threshold": "1e3"},
    {"low_balance_threshold": "99999999999999999999999"},
    {"low_balance_threshold": 10**30},
    {"low_balance_threshold": True},
    {"low_balance_threshold": "abc"},
    {"key_budget_percents": [0]},
    {"key_budget_percents": [101]},
    {"key_budget_percents": ["80"]},
    {"key_budget_percents": [True]},
    {"key_budget_percents": [10, 20, 30, 40, 50, 60]},
    {"key_budget_percents": 80},
    {"key_budget_percents": [2**70]},
    {"email": "not-an-address"},
    {"email": "ops@example.com\r\nBcc: evil@example.com"},
    {"email": "ü@例え.jp"},
    {"email": 7},
    {"email_enabled": "yes"},
    {"unknown": 1},
]


def test_bad_settings_are_refused_and_change_nothing(
        make_inproc: Any, upstream: FakeUpstream, hook: WebhookReceiver) -> None:
    gw = make_inproc(fake_config(upstream), env=env())
    account, key, api = setup_account(gw, hook, 10 * COST, low_balance_threshold="1.25",
                                      key_budget_percents=[50, 100], email="ops@example.com")
    before = api.ok(api.get("/account/alerts"))
    assert before["low_balance_threshold"] == "1.250000"
    assert before["key_budget_percents"] == [50, 100]
    for body in BAD_FIELDS:
        r = api.patch("/account/alerts", body)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert r.json()["error"]["param"] in (*body, None), (body, r.text)
    for raw in (b"\xff\xfe{", b"{\"email\": \"a\\u0000@b.com\"}", b"[1]", b"x" * 100_000):
        r = httpx.patch(gw.base_url + "/account/alerts", content=raw, timeout=30,
                        headers={"content-type": "application/json",
                                 "authorization": f"Bearer {key}"})
        assert 400 <= r.status_code < 500, (raw[:20], r.status_code)
    assert api.ok(api.get("/account/alerts")) == before
    # A restricted key reads, never changes (it could send the alerts elsewhere).
    scoped, _ = AdminAPI(gw).key(account, name="scoped", daily_budget="1")
    sapi = AdminAPI(gw, scoped)
    assert sapi.ok(sapi.get("/account/alerts"))["webhook_url"] == hook.url
    for r in (sapi.patch("/account/alerts", {"webhook_url": None}),
              sapi.post("/account/alerts/webhook-secret")):
        assert r.status_code == 403 and r.json()["error"]["code"] == "restricted_key"
    # Another account sees only its own settings and history.
    bob = AdminAPI(gw).account("bob", credit="1")
    bkey, _ = AdminAPI(gw).key(bob, name="b")
    bapi = AdminAPI(gw, bkey)
    assert bapi.ok(bapi.get("/account/alerts"))["webhook_url"] is None
    assert bapi.ok(bapi.get("/account/alerts/events"))["data"] == []
    assert bapi.get("/account/alerts/events", account_id=account).status_code == 400
    assert AdminAPI(gw, "sk-st-nope").get("/account/alerts").status_code == 401
    # Rotation: a new secret, shown once; alerts are signed with it from then on.
    old = hook.secret
    rotated = api.ok(api.post("/account/alerts/webhook-secret"))["webhook_secret"]
    assert rotated != old and rotated.startswith("whsec_")
    hook.secret = rotated
    api.ok(api.patch("/account/alerts", {"low_balance_threshold": usd(10 * COST + 1)}))
    [got] = hook.wait(1)  # the balance is below the new threshold already
    assert got.valid
    assert old not in gw.log() and rotated not in gw.log()
    stored = gw.sql("SELECT webhook_secret FROM alert_settings")[0]["webhook_secret"]
    assert rotated not in stored or stored.startswith("plain:")


def test_mail_goes_to_the_verified_account_email_by_default(
        make_inproc: Any, upstream: FakeUpstream, hook: WebhookReceiver, smtp: Mailbox) -> None:
    gw = make_inproc(fake_config(upstream), env=env(smtp))
    account, key, api = setup_account(gw, hook, 10 * COST, key_budget_percents=[])
    execute(gw, "UPDATE accounts SET email = 'alice@example.com' WHERE id = :a", a=account)
    view = api.ok(api.patch("/account/alerts", {"low_balance_threshold": usd(9 * COST + 1)}))
    assert view["email"] is None and view["email_recipient"] is None  # not verified yet
    assert ask(gw, key, 1) == 1
    [row] = wait_events(gw, 1)
    assert row["email_state"] == "none" and row["email_to"] is None
    execute(gw, "UPDATE accounts SET email_verified_at = CURRENT_TIMESTAMP WHERE id = :a",
            a=account)
    assert api.ok(api.get("/account/alerts"))["email_recipient"] == "alice@example.com"
    AdminAPI(gw).credit(account, usd(5 * COST))  # back above: the alert closes
    deadline = time.monotonic() + 10
    while events(gw)[0]["period"] == "open" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ask(gw, key, 6) == 6  # below again
    mail = smtp.wait_for("alice@example.com")
    assert "below" in mail.subject
    api.ok(api.patch("/account/alerts", {"email_enabled": False}))
    assert api.ok(api.get("/account/alerts"))["email_recipient"] is None

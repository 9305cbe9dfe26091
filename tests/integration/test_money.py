"""Issue 4: budgets and wallets that cannot be overrun, through the official openai SDK.

Every request here reserves exactly ``worst_case()`` and (by the fake's reported usage) spends
exactly that, so the number of requests a budget admits is known to the request.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.moneykit import (
    CATALOG,
    MASTER,
    MAX_TOKENS,
    MESSAGES,
    AdminAPI,
    assert_invariants,
    assert_ledger_balances,
    exact_usage,
    micro,
    usd,
    worst_case,
)

W = worst_case()


def _config(fake: FakeUpstream, failing: FakeUpstream | None = None, **extra: Any) -> Any:
    models = {"kimi-k2": {"routes": [{"provider": "fake0", "upstream_model": "kimi-up"}]}}
    fakes = [fake]
    if failing is not None:
        fakes.append(failing)
        models["deepseek-chat"] = {"routes": [{"provider": "fake1",
                                               "upstream_model": "deepseek-up"}]}
    return fake_config(*fakes, models=models, **extra)


def _env(**extra: str) -> dict[str, str]:
    return {"SMARTOKEN_MASTER_KEY": MASTER, **extra}


async def _one(client: openai.AsyncOpenAI, stream: bool, model: str = "kimi-k2") -> str:
    """One request; returns "ok" or the error code."""
    try:
        if stream:
            s = await client.chat.completions.create(
                model=model, messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True)
            async for _ in s:
                pass
        else:
            await client.chat.completions.create(model=model, messages=MESSAGES,
                                                 max_tokens=MAX_TOKENS)
        return "ok"
    except openai.APIStatusError as exc:
        if exc.code in ("budget_exceeded", "insufficient_balance"):
            assert exc.response.headers.get("x-should-retry") == "false"
        return f"{exc.status_code}:{exc.code}"


async def _burst(gw: Gateway, key: str, n: int, model: str = "kimi-k2") -> list[str]:
    client = gw.async_client(key, timeout=120)
    try:
        return list(await asyncio.gather(*(_one(client, i % 2 == 0, model) for i in range(n))))
    finally:
        await client.close()


def _key_view(admin: AdminAPI, key_id: int) -> dict[str, Any]:
    return admin.ok(admin.get(f"/admin/keys/{key_id}"))  # type: ignore[no-any-return]


def _wait_idle(admin: AdminAPI, account_id: int, key_id: int, records: int,
               gw: Gateway) -> None:
    """Wait until nothing is reserved and every usage record is written."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        wallet = admin.ok(admin.get(f"/admin/accounts/{account_id}/wallet"))
        key = _key_view(admin, key_id)
        if wallet["reserved"] == "0.000000" and key["spend"]["reserved"] == "0.000000" and \
                len(gw.usage(key_id=key_id)) >= records and \
                wallet["balance"] == wallet["recorded_balance"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"still reserved or unwritten: {wallet} {key}")


# ---------------------------------------------------------------- concurrency


def test_daily_budget_admits_exactly_what_fits(fake: FakeUpstream, make_inproc: Any) -> None:
    fake.set(usage=exact_usage(), chunks=3, first_byte_delay=0.05)
    gw = make_inproc(_config(fake), env=_env())
    admin = AdminAPI(gw)
    aid = admin.account("team", credit="10")
    key, kid = admin.key(aid, daily_budget=usd(50 * W), families=["kimi"])

    results = asyncio.run(_burst(gw, key, 200))

    assert results.count("ok") == 50, sorted(set(results))
    assert results.count("429:budget_exceeded") == 150
    _wait_idle(admin, aid, kid, 50, gw)
    recs = gw.usage(key_id=kid)
    assert len(recs) == 50 and all(r["status"] == "ok" for r in recs)
    assert sum(r["cost_micro"] for r in recs) == 50 * W  # spend == budget, never more
    ledger = assert_ledger_balances(gw, aid)
    assert ledger["spent"] == 50 * W and ledger["balance"] == 10_000_000 - 50 * W
    view = _key_view(admin, kid)
    assert micro(view["spend"]["daily"]) == micro(view["spend"]["monthly"]) == 50 * W
    wallet = admin.ok(admin.get(f"/admin/accounts/{aid}/wallet"))
    assert micro(wallet["balance"]) == micro(wallet["ledger_sum"]) == ledger["balance"]
    # The budget is spent: the next request is refused before the upstream is called.
    calls = len(fake.requests)
    with pytest.raises(openai.RateLimitError) as exc:
        gw.client(key).chat.completions.create(model="kimi-k2", messages=MESSAGES,
                                               max_tokens=MAX_TOKENS)
    assert exc.value.code == "budget_exceeded" and exc.value.param == "daily_budget"
    assert "daily budget" in exc.value.message
    assert len(fake.requests) == calls


def test_wallet_near_zero_admits_exactly_what_it_covers(fake: FakeUpstream,
                                                        make_inproc: Any) -> None:
    fake.set(usage=exact_usage(), chunks=3, first_byte_delay=0.05)
    gw = make_inproc(_config(fake), env=_env())
    admin = AdminAPI(gw)
    aid = admin.account("small", credit=usd(30 * W + W // 2))
    key, kid = admin.key(aid)  # no key budget: only the wallet limits

    results = asyncio.run(_burst(gw, key, 200))

    assert results.count("ok") == 30, sorted(set(results))
    assert results.count("402:insufficient_balance") == 170
    _wait_idle(admin, aid, kid, 30, gw)
    ledger = assert_ledger_balances(gw, aid)
    assert ledger["spent"] == 30 * W and ledger["balance"] == W // 2  # never below zero
    with pytest.raises(openai.APIStatusError) as exc:
        gw.client(key).chat.completions.create(model="kimi-k2", messages=MESSAGES,
                                               max_tokens=MAX_TOKENS)
    assert exc.value.status_code == 402 and exc.value.code == "insufficient_balance"
    # A credit through the admin API is usable at once (no restart, no poll delay), once.
    admin.credit(aid, usd(2 * W))
    assert asyncio.run(_burst(gw, key, 4)).count("ok") == 2
    _wait_idle(admin, aid, kid, 32, gw)
    assert assert_ledger_balances(gw, aid)["balance"] == W // 2


def test_an_upstream_reporting_more_than_reserved_is_charged_in_full(
        fake: FakeUpstream, make_inproc: Any) -> None:
    """The wallet and the budget have room for exactly the three reservations: each request is
    charged the upstream's true cost (issue 12 item 1: the operator pays it), which takes the
    wallet below zero by what the reservations did not cover; then every request is refused."""
    fake.set(usage={"prompt_tokens": 50_000, "completion_tokens": MAX_TOKENS})
    gw = make_inproc(_config(fake), env=_env())
    admin = AdminAPI(gw)
    aid = admin.account("overcount", credit=usd(3 * W))
    key, kid = admin.key(aid, daily_budget=usd(3 * W))
    assert asyncio.run(_burst(gw, key, 5)).count("ok") == 3
    _wait_idle(admin, aid, kid, 3, gw)
    recs = gw.usage(key_id=kid)
    true_cost = CATALOG.models["kimi-k2"].price.cost(50_000, MAX_TOKENS)
    assert [r["cost_micro"] for r in recs] == [true_cost] * 3 and true_cost > W
    assert all(r["prompt_tokens"] == 50_000 for r in recs)  # the counts stay as reported
    inv = assert_invariants(gw, aid, fakes=[fake], budget=3 * W, answered=3,
                            overrun=3 * (true_cost - W))
    assert inv["balance"] == 3 * W - 3 * true_cost < 0
    assert asyncio.run(_burst(gw, key, 2)).count("ok") == 0


# ---------------------------------------------------------------- settlement


async def _disconnect_mid_stream(gw: Gateway, key: str, model: str) -> None:
    client = gw.async_client(key, timeout=60)
    stream = await client.chat.completions.create(model=model, messages=MESSAGES,
                                                  max_tokens=MAX_TOKENS, stream=True)
    async for _chunk in stream:
        break  # one chunk, then go away
    await stream.close()
    await client.close()


def test_every_failure_releases_its_reservation(fake: FakeUpstream, make_fake: Any,
                                                make_inproc: Any) -> None:
    fake.set(usage=exact_usage())
    bad = make_fake(chunks=20, chunk_delay=0.1)
    gw = make_inproc(_config(fake, bad), env=_env())
    admin = AdminAPI(gw)
    aid = admin.account("failures", credit="10")
    # Room for the burst of 20 below at DeepSeek's peak price (twice the off-peak price that
    # worst_case() reads from the catalog): 20 x 130 < 10 W, at any hour of the day.
    budget = 10 * W
    key, kid = admin.key(aid, daily_budget=usd(budget))
    client = gw.client(key)

    # Client disconnects mid-stream: the delivered part is billed, the rest released.
    for _ in range(3):
        asyncio.run(_disconnect_mid_stream(gw, key, "deepseek-chat"))
    # Mid-stream upstream failure: partial, delivered part billed.
    bad.set(chunks=20, cut_after=2)
    # (The route's breaker may open after these; later ones then fail before any byte.)
    for _ in range(3):
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model="deepseek-chat", messages=MESSAGES,
                                                max_tokens=MAX_TOKENS, stream=True))
    # Upstream errors before any byte, streaming and not: nothing billed. (First wait for the
    # six above to settle: on a loaded machine a cut stream's hold can outlive the client's
    # error by a moment, and the burst would then see budget_exceeded, not the upstream.)
    _wait_idle(admin, aid, kid, 3 + 3, gw)
    bad.set(status=500)
    results = asyncio.run(_burst(gw, key, 20, "deepseek-chat"))
    assert all(r.startswith(("502:", "503:")) for r in results), \
        [r for r in results if not r.startswith(("502:", "503:"))]
    # A normal completion settles to its actual cost.
    client.chat.completions.create(model="kimi-k2", messages=MESSAGES, max_tokens=MAX_TOKENS)

    _wait_idle(admin, aid, kid, 3 + 3 + 20 + 1, gw)
    recs = gw.usage(key_id=kid)
    by_status: dict[str, int] = {}
    for r in recs:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    assert by_status["client_closed"] == 3 and by_status["ok"] == 1 and by_status["partial"] >= 1
    assert by_status["partial"] + by_status["upstream_error"] == 23
    assert all(r["cost_micro"] == 0 for r in recs if r["status"] == "upstream_error")
    spent = sum(r["cost_micro"] for r in recs)
    view = _key_view(admin, kid)
    assert micro(view["spend"]["daily"]) == spent and view["spend"]["reserved"] == "0.000000"
    # No phantom spend: what is left of the budget can be spent in full, and no more.
    fits = (budget - spent) // W
    assert fits >= 3
    results = asyncio.run(_burst(gw, key, fits + 5))
    assert results.count("ok") == fits and results.count("429:budget_exceeded") == 5
    _wait_idle(admin, aid, kid, 3 + 3 + 20 + 1 + fits, gw)
    assert micro(_key_view(admin, kid)["spend"]["daily"]) == spent + fits * W <= budget
    assert_ledger_balances(gw, aid)


# ---------------------------------------------------------------- SIGKILL


def test_sigkill_in_flight_then_restart_balances(fake: FakeUpstream,
                                                 make_gateway: Any) -> None:
    fake.set(usage=exact_usage())
    gw = make_gateway(_config(fake), env=_env())
    admin = AdminAPI(gw)
    aid = admin.account("killed", credit="1")
    key, kid = admin.key(aid, daily_budget=usd(10 * W))
    for _ in range(4):
        gw.client(key).chat.completions.create(model="kimi-k2", messages=MESSAGES,
                                               max_tokens=MAX_TOKENS)
    _wait_idle(admin, aid, kid, 4, gw)
    fake.set(usage=exact_usage(), chunks=50, chunk_delay=0.2)  # 10 s streams

    async def in_flight_then_kill() -> list[Any]:
        client = gw.async_client(key, timeout=60)
        tasks = [asyncio.create_task(_one(client, True)) for _ in range(6)]
        for _ in range(600):  # poll: the fake runs in another thread
            if fake.active_streams >= 6:
                break
            await asyncio.sleep(0.05)
        assert fake.active_streams == 6
        # The six hold the rest of the budget: a seventh is refused.
        view = await asyncio.to_thread(_key_view, admin, kid)
        assert micro(view["spend"]["reserved"]) == 6 * W
        assert await _one(client, False) == "429:budget_exceeded"
        await asyncio.to_thread(gw.kill)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
        return results

    results = asyncio.run(in_flight_then_kill())
    assert not any(r == "ok" for r in results)
    assert gw.proc is not None and gw.proc.returncode == -9
    ledger = assert_ledger_balances(gw, aid)  # the database is consistent as the kill left it
    assert ledger["spent"] == 4 * W

    gw.start()  # restart on the same database
    admin = AdminAPI(gw)
    fake.set(usage=exact_usage())
    # The six streams the kill cut are billed for what they had delivered (their last progress
    # line in the crash journal, issue 12 item 8), each less than a full answer.
    cut = gw.usage(key_id=kid, status="partial")
    assert len(cut) == 6 and all(0 < r["cost_micro"] < W for r in cut), cut
    billed = sum(r["cost_micro"] for r in cut)
    # The killed requests' reservations are gone: the whole rest of the budget is spendable.
    view = _key_view(admin, kid)
    assert view["spend"]["reserved"] == "0.000000"
    assert micro(view["spend"]["daily"]) == 4 * W + billed
    room = (6 * W - billed) // W
    results2 = asyncio.run(_burst(gw, key, 9))
    assert results2.count("ok") == room and results2.count("429:budget_exceeded") == 9 - room
    _wait_idle(admin, aid, kid, 10 + room, gw)
    ledger = assert_ledger_balances(gw, aid)
    assert ledger["spent"] == (4 + room) * W + billed
    assert ledger["balance"] == 1_000_000 - ledger["spent"]


def test_sigkill_after_answers_loses_no_record(fake: FakeUpstream, make_gateway: Any) -> None:
    """Answered requests whose records were still queued when the process was killed are
    written by the next start from the crash journal (ledger/journal.py): billed once."""
    fake.set(usage=exact_usage())
    # A flush interval of a minute: every record is still queued when the kill comes.
    gw = make_gateway(_config(fake, ledger_flush_ms=60_000), env=_env())
    admin = AdminAPI(gw)
    aid = admin.account("journaled", credit="1")
    key, kid = admin.key(aid)
    results = asyncio.run(_burst(gw, key, 12))  # six streamed, six not
    assert results == ["ok"] * 12
    journal = gw.data_dir / "journal"
    final = [line for p in journal.glob("*.jsonl") for line in p.read_bytes().splitlines()
             if not line.startswith(b"{")]  # (a stream's progress lines are objects)
    assert len(final) == 12
    gw.kill()
    assert gw.proc is not None and gw.proc.returncode == -9
    assert gw.usage(key_id=kid) == []  # nothing had reached the database

    gw.start()  # the next start writes them before it serves
    recs = gw.usage(key_id=kid)
    assert len(recs) == 12 and {r["stream"] for r in recs} == {True, False}
    assert all(r["cost_micro"] == W and r["status"] == "ok" for r in recs)
    ledger = assert_ledger_balances(gw, aid)
    assert ledger["spent"] == 12 * W and ledger["balance"] == 1_000_000 - 12 * W
    assert all(p.stat().st_size == 0 for p in journal.glob("*.jsonl"))  # old segments gone
    # The restarted process bills on: its counters were loaded after the recovery.
    assert asyncio.run(_burst(gw, key, 2)) == ["ok", "ok"]
    assert gw.stop() == 0
    assert list(journal.iterdir()) == []  # a clean stop leaves no journal behind
    ledger = assert_ledger_balances(gw, aid)
    assert ledger["spent"] == 14 * W and ledger["records"] == 14


# ---------------------------------------------------------------- windows


def test_windows_reset_at_midnight_in_the_configured_zone(tmp_path: Path, fake: FakeUpstream,
                                                          make_inproc: Any) -> None:
    tz = ZoneInfo("Asia/Shanghai")
    clock = tmp_path / "clock"

    def set_clock(*ymdhms: int) -> None:
        clock.write_text(str(datetime(*ymdhms, tzinfo=tz).timestamp()))  # type: ignore[misc]

    set_clock(2026, 3, 31, 23, 59, 50)
    fake.set(usage=exact_usage())
    gw = make_inproc(_config(fake, timezone="Asia/Shanghai"),
                     env=_env(SMARTOKEN_TEST_CLOCK_FILE=str(clock)))
    admin = AdminAPI(gw)
    aid = admin.account("tz", credit="1")
    key, kid = admin.key(aid, daily_budget=usd(3 * W), monthly_budget=usd(4 * W))
    client = gw.client(key)

    def call() -> str:
        return asyncio.run(_burst(gw, key, 1))[0]

    assert call() == "ok"  # 31 March, 23:59:50 in Shanghai
    # A stream that starts before midnight and ends after it is charged to 31 March.
    fake.set(usage=exact_usage(), chunks=10, chunk_delay=0.1)
    stream = client.chat.completions.create(model="kimi-k2", messages=MESSAGES,
                                            max_tokens=MAX_TOKENS, stream=True)
    it = iter(stream)
    next(it)
    set_clock(2026, 4, 1, 0, 0, 5)  # 16:00:05 UTC on 31 March: a new day only in Shanghai
    list(it)
    fake.set(usage=exact_usage())
    recs = gw.wait_usage(2, key_id=kid)
    assert [(r["day"], r["month"]) for r in recs] == [("2026-03-31", "2026-03")] * 2
    # 1 April: the daily budget is fresh (the straddling stream did not count here) ...
    assert [call() for _ in range(4)] == ["ok", "ok", "ok", "429:budget_exceeded"]
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="kimi-k2", messages=MESSAGES, max_tokens=MAX_TOKENS)
    assert exc.value.param == "daily_budget"
    # ... 2 April: a new day, and the month (4 x W) is what stops it now.
    set_clock(2026, 4, 2, 0, 0, 1)
    assert call() == "ok"
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="kimi-k2", messages=MESSAGES, max_tokens=MAX_TOKENS)
    assert exc.value.param == "monthly_budget" and "monthly budget" in exc.value.message
    set_clock(2026, 4, 30, 23, 59, 59)
    assert call() == "429:budget_exceeded"
    # 1 May, 00:00:00 in Shanghai: the month resets.
    set_clock(2026, 5, 1, 0, 0, 0)
    assert call() == "ok"
    recs = gw.wait_usage(7, key_id=kid)
    days = sorted(r["day"] for r in recs)
    assert days == ["2026-03-31"] * 2 + ["2026-04-01"] * 3 + ["2026-04-02"] + ["2026-05-01"]
    view = _key_view(admin, kid)
    assert view["spend"]["day"] == "2026-05-01" and micro(view["spend"]["monthly"]) == W
    assert_ledger_balances(gw, aid)

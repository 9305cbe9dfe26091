"""Issue 5: N replicas on PostgreSQL and Redis, one ledger.

Real ``smartoken serve`` processes against the real PostgreSQL (a fresh database per test) and
Redis (a private key prefix per test, or a private redis-server that the test stops), the fake
upstream over HTTP, and the official openai SDK.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from smartoken import tokens
from smartoken.catalog.builtin import builtin_catalog
from smartoken.relay.pipeline import PROMPT_HEADROOM_ADD, PROMPT_HEADROOM_DEN, PROMPT_HEADROOM_NUM
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.services import (  # noqa: F401  (fixtures)
    REDIS_URL,
    RedisServer,
    pg_url,
    private_redis,
    redis_prefix,
)

pytestmark = pytest.mark.scaleout

PRICE = builtin_catalog().models["kimi-k2"].price
MESSAGES = [{"role": "user", "content": "Say something about scale-out."}]
MAX_TOKENS = 200
TTL = "3"  # reservation TTL in these tests: a killed replica's reservations expire after 3 s


def worst_case() -> tuple[int, int, int]:
    """(prompt tokens reserved, completion tokens reserved, cost): the fake reports exactly
    this usage, so every request costs exactly what it reserved."""
    prompt = tokens.count_messages(MESSAGES, None)
    reserved_prompt = prompt * PROMPT_HEADROOM_NUM // PROMPT_HEADROOM_DEN + PROMPT_HEADROOM_ADD
    return reserved_prompt, MAX_TOKENS, PRICE.cost(reserved_prompt, MAX_TOKENS)


def exact_usage(fake: FakeUpstream, **extra: Any) -> int:
    p, c, cost = worst_case()
    fake.set(usage={"prompt_tokens": p, "completion_tokens": c}, **extra)
    return cost


def replicas(tmp_path: Path, fake: FakeUpstream, n: int, env: dict[str, str],
             workers: int = 1) -> list[Gateway]:
    out = []
    for i in range(n):
        sub = tmp_path / f"replica{i}"
        sub.mkdir()
        out.append(Gateway(sub, fake_config(fake), env, workers=workers).start())
    return out


@pytest.fixture
def cluster_env(pg_url: str, redis_prefix: str) -> dict[str, str]:  # noqa: F811
    return {"SMARTOKEN_DATABASE_URL": pg_url, "SMARTOKEN_REDIS_URL": REDIS_URL,
            "SMARTOKEN_REDIS_PREFIX": redis_prefix, "SMARTOKEN_RESERVATION_TTL": TTL}


@pytest.fixture
def stop_all() -> Any:
    made: list[Gateway] = []
    yield made
    for gw in made:
        gw.stop()


async def _one(client: openai.AsyncOpenAI, **kw: Any) -> Any:
    try:
        return await client.chat.completions.create(
            model="kimi-k2", messages=MESSAGES, max_tokens=MAX_TOKENS, **kw)
    except openai.APIStatusError as exc:
        return exc


def spread(gws: list[Gateway], key: str, n: int, **kw: Any) -> list[Any]:
    async def main() -> list[Any]:
        clients = [gw.async_client(key, timeout=120) for gw in gws]
        try:
            return await asyncio.gather(*(_one(clients[i % len(clients)], **kw)
                                          for i in range(n)))
        finally:
            for c in clients:
                await c.close()

    return asyncio.run(main())


def ok(results: list[Any]) -> list[Any]:
    return [r for r in results if not isinstance(r, BaseException)]


def codes(results: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        name = "ok" if not isinstance(r, BaseException) else \
            f"{r.status_code}:{(r.body or {}).get('code') if isinstance(r.body, dict) else r}"
        out[name] = out.get(name, 0) + 1
    return out


def assert_ledger_consistent(gw: Gateway, account_id: int, credited: int) -> int:
    """The ledger of record: one debit per billed usage record, same amounts, and the wallet
    balance equal to credits minus debits, to the micro-dollar. Returns the total spend."""
    [u] = gw.sql("SELECT COALESCE(SUM(cost_micro), 0) AS s, COUNT(*) AS n FROM usage_records "
                 "WHERE account_id = :a", a=account_id)
    [d] = gw.sql("SELECT COALESCE(SUM(amount_micro), 0) AS s, COUNT(*) AS n "
                 "FROM wallet_transactions WHERE account_id = :a AND kind = 'debit'",
                 a=account_id)
    [billed] = gw.sql("SELECT COUNT(*) AS n FROM usage_records WHERE account_id = :a "
                      "AND cost_micro > 0", a=account_id)
    [w] = gw.sql("SELECT balance_micro FROM wallets WHERE account_id = :a", a=account_id)
    unmatched = gw.sql("SELECT u.id FROM usage_records u LEFT JOIN wallet_transactions t "
                       "ON t.request_id = u.id WHERE u.account_id = :a AND u.cost_micro > 0 "
                       "AND (t.id IS NULL OR t.amount_micro != -u.cost_micro)", a=account_id)
    assert unmatched == []
    assert int(d["s"]) == -int(u["s"]) and int(d["n"]) == int(billed["n"])
    assert int(w["balance_micro"]) == credited + int(d["s"])
    return int(u["s"])


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ---------------------------------------------------------------------------- the guarantee


def test_three_replicas_300_requests_budget_for_100(
        tmp_path: Path, fake: FakeUpstream, cluster_env: dict[str, str], stop_all: Any) -> None:
    cost = exact_usage(fake)
    gws = replicas(tmp_path, fake, 3, cluster_env)
    stop_all.extend(gws)
    key = gws[0].key("team", credit="1000", daily_budget_micro=100 * cost)
    results = spread(gws, key, 300)
    got = codes(results)
    assert len(ok(results)) == 100, got  # every request costs exactly its reservation
    assert got.get("429:budget_exceeded", 0) == 200, got
    rows = gws[0].wait_usage(100, timeout=30, status="ok")
    assert len(rows) == 100
    aid = gws[0].account("team")
    spent = assert_ledger_consistent(gws[0], aid, 1000_000_000)
    assert spent == 100 * cost <= 100 * cost
    # Each replica served a share: the load really was spread over three processes.
    served = {r["id"] for r in rows}
    assert len(served) == 100


def test_wallet_is_shared_too(tmp_path: Path, fake: FakeUpstream,
                              cluster_env: dict[str, str], stop_all: Any) -> None:
    cost = exact_usage(fake)
    gws = replicas(tmp_path, fake, 2, cluster_env)
    stop_all.extend(gws)
    aid = gws[0].account("poor")
    from smartoken.money import format_usd
    key = gws[0].key("poor", credit=format_usd(30 * cost))
    results = spread(gws, key, 80)
    assert len(ok(results)) == 30, codes(results)
    assert codes(results).get("402:insufficient_balance", 0) == 50
    gws[0].wait_usage(30, timeout=30, status="ok")
    assert assert_ledger_consistent(gws[0], aid, 30 * cost) == 30 * cost
    # A credit written by someone else (the CLI) reaches the shared counters.
    gws[0].account("poor", credit=format_usd(5 * cost))
    wait_for(lambda: not isinstance(spread(gws[:1], key, 1)[0], BaseException), 15,
             "the credit to be visible")

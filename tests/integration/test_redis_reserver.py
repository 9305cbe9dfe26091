"""Issue 12, items 4 and 10: the Redis reserver under load and after a database restore.

In-process gateways (tests/inproc.py) on a fresh PostgreSQL database and a private Redis key
prefix; the fake upstream over HTTP and the official openai SDK."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config
from tests.scaleout_support import (
    MAX_TOKENS,
    MESSAGES,
    assert_ledger_consistent,
    codes,
    exact_usage,
)
from tests.services import REDIS_URL, pg_url, redis_prefix  # noqa: F401  (fixtures)

pytestmark = pytest.mark.scaleout


@pytest.fixture
def redis_env(pg_url: str, redis_prefix: str) -> dict[str, str]:  # noqa: F811
    return {"SMARTOKEN_DATABASE_URL": pg_url, "SMARTOKEN_REDIS_URL": REDIS_URL,
            "SMARTOKEN_REDIS_PREFIX": redis_prefix, "SMARTOKEN_RESERVER": "redis"}


def _burst(gw: Any, key: str, n: int) -> list[Any]:
    async def main() -> list[Any]:
        client = gw.async_client(key, timeout=180)

        async def one() -> Any:
            try:
                return await client.chat.completions.create(
                    model="kimi-k2", messages=MESSAGES, max_tokens=MAX_TOKENS)
            except openai.APIStatusError as exc:
                return exc

        try:
            return await asyncio.gather(*(one() for _ in range(n)))
        finally:
            await client.close()

    return asyncio.run(main())


def test_1000_concurrent_budgeted_requests_on_one_process_get_no_503(
        fake: FakeUpstream, make_inproc: Any, redis_env: dict[str, str]) -> None:
    """Before: redis-py's default pool (100 connections, no wait) raised 'Too many
    connections', reported as 'Redis is unreachable': 301 x 503 of 400 requests."""
    cost = exact_usage(fake, first_byte_delay=0.5)  # every request holds its reservation 0.5 s
    gw = make_inproc(fake_config(fake), env=redis_env)
    n = 1000
    key = gw.key("load", credit="1000", daily_budget_micro=cost * (n + 10))
    aid = gw.account("load")
    started = time.monotonic()
    results = _burst(gw, key, n)
    took = time.monotonic() - started
    assert codes(results) == {"ok": n}, codes(results)
    gw.wait_usage(n, timeout=30, account_id=aid)
    assert assert_ledger_consistent(gw, aid, 1000 * 10**6) == n * cost
    print(f"1000 concurrent budgeted requests on one process: {took:.1f} s")

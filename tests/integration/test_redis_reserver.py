"""Issue 12, items 4 and 10: the Redis reserver under load and after a database restore.

In-process gateways (tests/inproc.py) on a fresh PostgreSQL database and a private Redis key
prefix; the fake upstream over HTTP and the official openai SDK."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from zoneinfo import ZoneInfo

import openai
import pytest
import redis
from asyncpg.exceptions import TooManyConnectionsError
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from smartoken.auth.keys import KeyContext
from smartoken.budget.redis_reserver import RedisReserver
from smartoken.budget.windows import Windows
from smartoken.cluster.options import ClusterOptions
from smartoken.errors import BudgetStoreUnavailable
from smartoken.store import snapshots
from smartoken.store.db import make_engine, migrate
from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config
from tests.scaleout_support import (
    MAX_TOKENS,
    MESSAGES,
    assert_ledger_consistent,
    codes,
    exact_usage,
    wait_for,
)
from tests.services import REDIS_URL, pg_migrated_url, redis_prefix  # noqa: F401  (fixtures)

pytestmark = pytest.mark.scaleout


@pytest.fixture
def redis_env(pg_migrated_url: str, redis_prefix: str) -> dict[str, str]:  # noqa: F811
    return {"SMARTOKEN_DATABASE_URL": pg_migrated_url, "SMARTOKEN_REDIS_URL": REDIS_URL,
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


@pytest.mark.serial  # alone, after the parallel part of `make test` (Makefile)
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


@pytest.mark.serial  # waits on a 10 s bound: alone, after the parallel part of `make test`
def test_every_redis_key_heals_a_restored_wallet_and_a_drifted_sum(
        fake: FakeUpstream, make_inproc: Any, redis_env: dict[str, str],
        redis_prefix: str) -> None:  # noqa: F811
    """Before: after a database restore moved a wallet back in time, the account got 503
    'Budget counters could not be loaded' forever (the floor ``av`` had no TTL and refused
    every older snapshot). A reservation sum that drifted was never corrected."""
    cost = exact_usage(fake)
    env = {**redis_env, "SMARTOKEN_COUNTER_TTL": "1", "SMARTOKEN_RESERVATION_TTL": "4"}
    gw = make_inproc(fake_config(fake), env=env)
    key = gw.key("team", credit="10")
    aid = gw.account("team")
    before = gw.sql("SELECT balance_micro, version FROM wallets WHERE account_id = :a", a=aid)[0]
    client = gw.client(key)
    for _ in range(3):
        client.chat.completions.create(model="kimi-k2", messages=MESSAGES, max_tokens=MAX_TOKENS)
    assert len(gw.wait_usage(3, account_id=aid)) == 3
    r = redis.Redis.from_url(REDIS_URL)
    wait_for(lambda: int(r.get(f"{redis_prefix}av:{aid}") or 0) > before["version"], 10,
             "the ledger batch to reach Redis")
    # The restore: the ledger as it was before the three requests.
    async def restore(engine: Any) -> None:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM wallet_transactions WHERE account_id = :a "
                                    "AND kind = 'debit'"), {"a": aid})
            await conn.execute(text("DELETE FROM usage_records WHERE account_id = :a"),
                               {"a": aid})
            await conn.execute(text("UPDATE wallets SET balance_micro = :b, version = :v "
                                    "WHERE account_id = :a"),
                               {"b": before["balance_micro"], "v": before["version"], "a": aid})

    gw.db(restore)
    r.delete(f"{redis_prefix}ab:{aid}")  # as its TTL would, a second later
    got = client.chat.completions.create(model="kimi-k2", messages=MESSAGES,
                                         max_tokens=MAX_TOKENS)
    assert got.choices[0].message.content
    assert len(gw.wait_usage(1, account_id=aid)) == 1
    wait_for(lambda: int(r.hget(f"{redis_prefix}ab:{aid}", "bal") or 0)
             == before["balance_micro"] - cost, 10, "the counter to follow the restored ledger")
    # A drifted reservation sum (as if $1,000 were held by reservations that do not exist):
    # every request is refused until the sums are recomputed from the reservations.
    r.incrby(f"{redis_prefix}ar:{aid}", 10**9)
    wait_for(lambda: int(r.get(f"{redis_prefix}ar:{aid}") or 0) == 0, 10,
             "the drifted sum to heal")
    client.chat.completions.create(model="kimi-k2", messages=MESSAGES, max_tokens=MAX_TOKENS)
    assert len(gw.wait_usage(2, account_id=aid)) == 2
    r.close()


def test_counters_that_cannot_be_loaded_from_the_database_are_a_503(
        pg_migrated_url: str, redis_prefix: str,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen in the 3-replica test on a loaded host: PostgreSQL refused a connection ('sorry, too
    many clients already') while a counter was loaded, and the request got 500 internal_error
    (the Redis reserver took only OSError for an unreachable store)."""
    async def too_many_clients(*_a: Any, **_k: Any) -> Any:
        raise DBAPIError("SELECT ...", None,
                         TooManyConnectionsError("sorry, too many clients already"))

    async def main() -> None:
        engine = make_engine(pg_migrated_url)
        r = Redis.from_url(REDIS_URL)
        try:
            await migrate(engine)
            reserver = RedisReserver(engine, Windows(ZoneInfo("UTC")), r,
                                     ClusterOptions(prefix=redis_prefix), "test")
            await r.set(f"{redis_prefix}epoch", 0)  # a warm Redis (as start() leaves it)
            monkeypatch.setattr(snapshots, "wallet_counter", too_many_clients)
            key = KeyContext(1, 1, "a", "user", "sk-st-x", "k", None, None, None, None, None,
                             None, False)
            with pytest.raises(BudgetStoreUnavailable):
                await reserver.reserve(key, 100, "req_1")
        finally:
            await r.aclose()
            await engine.dispose()

    asyncio.run(main())


def test_a_dead_replicas_journal_is_claimed_once_and_drained(
        redis_prefix: str) -> None:  # noqa: F811
    """Issue 12 item 8: two live replicas run their liveness beat at once after a third one
    died; its journal hash is claimed by exactly one, which writes its final records (and the
    last progress of a stream with no final record, never the progress of one that has) and
    deletes it. A drainer that fails keeps the claim for the next beat."""
    from datetime import UTC, datetime

    from smartoken.ledger import journal
    from smartoken.ledger.records import UsageRecord

    def rec(rid: str, cost: int, status: str = "ok") -> UsageRecord:
        return UsageRecord(rid, datetime.now(UTC), 1, 1, "m", "m", "2026-12-02", "2026-12",
                           stream=True, status=status, cost_micro=cost)

    class Drainer:
        def __init__(self, fail: bool = False) -> None:
            self.fail = fail
            self.got: list[UsageRecord] = []

        async def write_recovered(self, records: list[UsageRecord]) -> int:
            if self.fail:
                raise OSError("database down")
            self.got += records
            return len(records)

    async def main() -> None:
        r = Redis.from_url(REDIS_URL)
        p = redis_prefix
        try:
            live = [RedisReserver(None, Windows(ZoneInfo("UTC")), r,  # type: ignore[arg-type]
                                  ClusterOptions(prefix=p), name) for name in ("gw-a", "gw-b")]
            drainers = [Drainer(fail=True), Drainer(fail=True)]
            for reserver, drainer in zip(live, drainers, strict=True):
                reserver.attach_ledger(drainer)
            await r.sadd(f"{p}owners", "gw-dead")  # it beat once, then was SIGKILLed
            await r.hset(f"{p}journal:gw-dead", mapping={
                "req_done": journal.line(rec("req_done", 500)),
                "p:req_done": journal.progress_line(rec("req_done", 100, "partial")),
                "p:req_cut": journal.progress_line(rec("req_cut", 70, "partial")),
                "req_bad": b"\xff\x00not json",
            })
            await asyncio.gather(*(x.alive_once() for x in live))
            owners = [x for x in live if x._claims]
            assert len(owners) == 1, [x._claims for x in live]
            owner = owners[0]
            drainer = drainers[live.index(owner)]
            (claim,) = owner._claims
            assert claim.startswith(f"{p}jclaim:{owner._origin}:")
            assert not await r.exists(f"{p}journal:gw-dead")
            assert owner._draining is not None
            await owner._draining  # the database is down: the claim stays
            assert await r.exists(claim) and owner._claims == {claim}
            drainer.fail = False
            await owner.alive_once()
            assert owner._draining is not None
            await owner._draining
            got = {x.id: x for x in drainer.got}
            assert set(got) == {"req_done", "req_cut"}
            assert got["req_done"].cost_micro == 500 and got["req_done"].status == "ok"
            assert got["req_cut"].cost_micro == 70 and got["req_cut"].status == "partial"
            assert not await r.exists(claim) and not owner._claims
            assert not await r.smembers(f"{p}jclaims:{owner._origin}")
            # nothing is drained twice
            await asyncio.gather(*(x.alive_once() for x in live))
            assert len(drainer.got) == 2 and not any(x._claims for x in live)
        finally:
            await r.aclose()

    asyncio.run(main())

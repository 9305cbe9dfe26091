"""Issue 12, item 9: fail-open is bounded. Three in-process replicas share PostgreSQL and reach
Redis through a TCP proxy the test cuts (tests/tcpproxy.py); ``SMARTOKEN_REDIS_DOWN=open``.
During the outage each replica may spend only its third of what was left; when Redis answers
again the shared counters are used at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config
from tests.scaleout_support import assert_ledger_consistent, codes, exact_usage, ok, spread
from tests.services import REDIS_URL, pg_migrated_url, redis_prefix  # noqa: F401  (fixtures)
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.scaleout


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    host, port = REDIS_URL.split("//")[1].split("/")[0].split(":")
    proxy = TcpProxy(host, int(port)).up()
    yield proxy
    proxy.close()


def test_fail_open_spends_at_most_what_was_left_across_three_replicas(
        fake: FakeUpstream, make_inproc: Any, pg_migrated_url: str,  # noqa: F811
        redis_prefix: str, redis_proxy: TcpProxy) -> None:  # noqa: F811
    cost = exact_usage(fake)
    env = {"SMARTOKEN_DATABASE_URL": pg_migrated_url, "SMARTOKEN_RESERVER": "redis",
           "SMARTOKEN_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/0",
           "SMARTOKEN_REDIS_PREFIX": redis_prefix, "SMARTOKEN_REDIS_DOWN": "open",
           "SMARTOKEN_RESERVATION_TTL": "4"}
    gws = [make_inproc(fake_config(fake), env=env) for _ in range(3)]
    budget = 31 * cost
    key = gws[0].key("team", credit="100", daily_budget_micro=budget)
    aid = gws[0].account("team")
    assert len(ok(spread(gws, key, 10))) == 10
    gws[0].wait_usage(10, timeout=30, status="ok")  # in the ledger the shares are read from
    time.sleep(1.5)  # every replica has heartbeated: each knows there are three
    redis_proxy.down()
    # 21 requests' worth was left: each replica may spend 7 (before: 21 each, 63 in all, 3x).
    during = spread(gws, key, 60)
    per = [sum(1 for r in during[i::3] if not isinstance(r, BaseException)) for i in range(3)]
    assert len(ok(during)) == 21, (codes(during), per)
    assert codes(during).get("429:budget_exceeded") == 39, codes(during)
    redis_proxy.up()
    rows = gws[0].wait_usage(31, timeout=30, status="ok")
    assert len(rows) == 31
    # Redis answers: each replica first pushes what it spent on its share, and none uses the
    # shared counters before all have (the fence): they refuse at once, never serve.
    after = spread(gws, key, 6)
    assert not ok(after), codes(after)
    assert set(codes(after)) <= {"429:budget_exceeded", "503:budget_store_unavailable"}, \
        codes(after)
    spent = assert_ledger_consistent(gws[0], aid, 100_000_000)
    assert spent == 31 * cost <= budget

"""Issue 12, item 17: rpm limits, the per-address failed-authentication limit and the console's
sign-in throttle hold across replicas: three gateways on one PostgreSQL database and one Redis,
requests spread over them round-robin."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from smartoken.auth.keys import KeyContext
from smartoken.cluster.shared_limits import SharedRateLimiter
from smartoken.errors import RateLimited
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.scaleout_support import codes, spread
from tests.services import REDIS_URL, pg_migrated_url, redis_prefix  # noqa: F401  (fixtures)

pytestmark = pytest.mark.scaleout


@pytest.fixture
def three(fake: FakeUpstream, make_inproc: Any, pg_migrated_url: str,  # noqa: F811
          redis_prefix: str) -> list[Gateway]:  # noqa: F811
    """Three replicas, served from this test process (tests/inproc.py): nothing here needs
    separate processes, only separate gateways sharing the database and Redis."""
    env = {"SMARTOKEN_DATABASE_URL": pg_migrated_url, "SMARTOKEN_REDIS_URL": REDIS_URL,
           "SMARTOKEN_REDIS_PREFIX": redis_prefix}
    return [make_inproc(fake_config(fake), env=env) for _ in range(3)]


def test_limits_hold_across_three_replicas(three: list[Gateway]) -> None:
    gws = three
    # rpm: a key limited to 60 requests a minute gets 60 in all, not 60 per replica (before:
    # ~180 of 180 served). The bucket refills one request a second while the test runs.
    key = gws[0].key("team", credit="100", rpm=60)
    started = time.monotonic()
    results = spread(gws, key, 180)
    elapsed = time.monotonic() - started
    got = codes(results)
    assert 60 <= got.get("ok", 0) <= 60 + int(elapsed) + 1, (got, elapsed)
    assert got.get("ok", 0) + got.get("429:rate_limit_exceeded", 0) == 180, got

    # Console sign-in throttling: 5 failures for one name across the replicas, then 429 on
    # every replica, even with the right password (before: 5 per replica).
    def attempt(gw: Gateway, password: str) -> int:
        with httpx.Client(base_url=gw.base_url, timeout=10) as client:
            form = client.get("/console/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token, form.text[:200]
            return client.post("/console/login", data={
                "csrf_token": token.group(1), "name": "nobody-here",
                "password": password}).status_code

    tries = [attempt(gws[i % 3], f"guess-{i}") for i in range(9)]
    assert tries == [401] * 5 + [429] * 4, tries

    # Failed authentications per address: 20 a minute across the replicas (the 5 failed
    # sign-ins above count too), then 429 everywhere (before: 20 per replica).
    statuses = []
    for i in range(30):
        r = httpx.post(gws[i % 3].base_url + "/v1/chat/completions",
                       headers={"authorization": "Bearer sk-st-" + "x" * 40},
                       json={"model": "kimi-k2", "messages": []}, timeout=10)
        statuses.append(r.status_code)
    assert statuses.count(401) == 15 and statuses.count(429) == 15, statuses


def test_tpm_and_rpm_buckets_in_redis_match_the_process_rules(
        redis_prefix: str) -> None:  # noqa: F811
    """The Redis scripts keep budget/ratelimit.py's rules: both buckets taken together or
    neither, completion tokens charged at settle (the bucket may go into debt)."""
    async def main() -> None:
        r = Redis.from_url(REDIS_URL)
        limiter = SharedRateLimiter(redis=r, prefix=redis_prefix)
        key = KeyContext(7, 1, "a", "user", "sk-st-x", "k", None, None, None, 2, 100, None,
                         False)
        await limiter.admit(key, 60)
        with pytest.raises(RateLimited) as tpm:
            await limiter.admit(key, 60)  # 40 tokens left
        assert tpm.value.param == "tpm"
        await limiter.admit(key, 40)
        with pytest.raises(RateLimited) as rpm:  # 2 requests a minute: none left
            await limiter.admit(KeyContext(7, 1, "a", "user", "sk-st-x", "k", None, None, None,
                                           2, None, None, False), 1)
        assert rpm.value.param == "rpm"
        limiter.charge(key, 500)
        await asyncio.sleep(0.2)
        level = float(await r.hget(f"{redis_prefix}rl:t:7", "level") or 0)
        assert level < -499  # in debt: the next request waits until it is paid back
        await r.aclose()

    asyncio.run(main())

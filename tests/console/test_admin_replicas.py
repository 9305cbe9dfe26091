"""Issue 14: a change made in one replica's console reaches the other replica within about a
second (two replicas sharing PostgreSQL and Redis): a provider added, a model repriced, a route
disabled."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from smartoken.auth.secretbox import generate_key
from smartoken.money import Price, parse_usd
from tests.console.conftest import ConsoleGateway, admin_password, sign_in
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway
from tests.services import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    REDIS_URL,
    _admin,
    redis_prefix,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.scaleout
MSG = [{"role": "user", "content": "hello"}]
USAGE = {"prompt_tokens": 1000, "completion_tokens": 500}


@pytest.fixture
def pg_db() -> Iterator[str]:
    """A fresh PostgreSQL database, made from a worker thread: Playwright's sync API keeps an
    event loop running in the test's thread (tests.services.pg_url uses asyncio.run)."""
    name = "st_" + secrets.token_hex(6)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin(f"CREATE DATABASE {name}")).result()
        try:
            yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
        finally:
            pool.submit(asyncio.run,
                        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")).result()


@pytest.fixture
def two(tmp_path: Path, pg_db: str, redis_prefix: str  # noqa: F811
        ) -> Iterator[tuple[Gateway, Gateway]]:
    env = {"SMARTOKEN_DATABASE_URL": pg_db, "SMARTOKEN_REDIS_URL": REDIS_URL,
           "SMARTOKEN_REDIS_PREFIX": redis_prefix, "SMARTOKEN_SECRET_KEY": generate_key()}
    made = []
    for i in range(2):
        (tmp_path / f"r{i}").mkdir()
        made.append(ConsoleGateway(tmp_path / f"r{i}", None, env).start())
    yield made[0], made[1]
    for gw in made:
        gw.stop()


def until(check: Callable[[], bool], limit: float = 2.0) -> float:
    """Seconds until ``check()`` holds (fails after ``limit``)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < limit, "the other replica did not follow in time"
        time.sleep(0.05)
    return time.monotonic() - start


def test_console_change_reaches_the_other_replica(two: tuple[Gateway, Gateway],
                                                  new_page: Callable[..., Page]) -> None:
    a, b = two
    fake = FakeUpstream(usage=USAGE).start()
    try:
        client_b = b.client(b.key(credit="10"), max_retries=0)

        def served_by(model: str) -> Callable[[], bool]:
            def check() -> bool:
                before = len(fake.requests)
                client_b.chat.completions.create(model="kimi-k2", messages=MSG, max_tokens=600)
                return len(fake.requests) > before and fake.requests[-1]["model"] == model
            return check

        page = new_page(a)
        sign_in(page, "admin", admin_password(a))
        page.goto("/console/admin/providers")
        page.fill("#provider-form input[name=name]", "moon")
        page.fill("#provider-form input[name=base_url]", fake.base_url)
        page.fill("#provider-form textarea[name=api_keys]", "vendor-key-0001")
        page.fill("#provider-form textarea[name=routes]", "kimi-k2 up-a 100 1\n"
                  "kimi-k2 up-b 50 1")
        page.click("#save-provider")
        expect(page.locator("#saved-note")).to_be_visible()
        added = until(served_by("up-a"))
        page.select_option("#price-form select[name=model]", "kimi-k2.6")
        page.fill("#price-form input[name=input]", "3.00")
        page.fill("#price-form input[name=output]", "9.00")
        page.click("#save-price")
        expect(page.locator("#priced-note")).to_be_visible()
        new_price = Price(parse_usd("3.00"), parse_usd("9.00")).cost(1000, 500)

        def billed_new() -> bool:
            before = {r["id"] for r in b.usage()}
            client_b.chat.completions.create(model="kimi-k2", messages=MSG, max_tokens=600)
            fresh = [r for r in b.wait_usage(len(before) + 1) if r["id"] not in before]
            return bool(fresh) and fresh[0]["cost_micro"] == new_price

        repriced = until(billed_new, 4.0)  # each check waits for its record to be written
        page.goto("/console/admin/providers?edit=moon")
        page.fill("#provider-form textarea[name=routes]", "kimi-k2 up-a 100 1 off\n"
                  "kimi-k2 up-b 50 1")
        page.click("#save-provider")
        expect(page.locator("#saved-note")).to_be_visible()
        moved = until(served_by("up-b"))
        print(f"replica b followed: provider {added:.2f} s, price {repriced:.2f} s, "
              f"route {moved:.2f} s")
    finally:
        fake.stop()

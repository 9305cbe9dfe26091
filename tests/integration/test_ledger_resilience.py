"""Issue 12 item 2: one bad record never blocks the ledger, on SQLite, PostgreSQL and Redis.

An upstream's error text carrying a NUL character used to make every PostgreSQL batch fail,
forever: 0 of 51 records written, an uninvolved account's debit held back with them, and in
Redis mode all of them lost at shutdown. In-process gateways on the real databases, the fake
upstream over HTTP, the official SDK.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config
from tests.moneykit import assert_ledger_balances
from tests.services import REDIS_URL, pg_url, redis_prefix  # noqa: F401  (fixtures)

NO_BREAKER = {"consecutive_failures": 1000, "window": 1000, "min_samples": 1000}
BAD_TEXT = "quota\x00exceeded \x1b[31mfor\x00 key"


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def backend_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    env = {"SMARTOKEN_DATABASE_URL": request.getfixturevalue("pg_migrated_url")}
    if request.param == "redis":
        env.update({"SMARTOKEN_REDIS_URL": REDIS_URL,
                    "SMARTOKEN_REDIS_PREFIX": request.getfixturevalue("redis_prefix")})
    return env


def test_a_nul_in_an_upstream_error_blocks_nothing(
        fake: FakeUpstream, make_inproc: Any, backend_env: dict[str, str]) -> None:
    # A minute between flushes: all 52 records go in the one batch written at shutdown.
    # The breaker stays closed: every request reaches the upstream and records its text.
    gw = make_inproc(fake_config(fake, ledger_flush_ms=60_000, breaker=NO_BREAKER),
                     env=backend_env)
    failing = gw.key("failing", credit="1")
    other = gw.key("uninvolved", credit="1")
    fake.set(status=500, error_body={"error": {"message": BAD_TEXT, "type": "server_error"}})
    client = gw.client(failing)
    for i in range(51):
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="kimi-k2", max_tokens=20, stream=i % 2 == 1,
                                           messages=[{"role": "user", "content": "hi"}])
        assert err.value.status_code == 502  # every route failed: an answer, recorded
    fake.set(status=200, usage={"prompt_tokens": 10, "completion_tokens": 5})
    gw.client(other).chat.completions.create(model="kimi-k2", max_tokens=20,
                                             messages=[{"role": "user", "content": "hi"}])
    gw.stop()

    rows = gw.usage(key_id=gw.key_ids[failing])
    assert len(rows) == 51 and {r["status"] for r in rows} == {"upstream_error"}
    for r in rows:
        assert "\x00" not in (r["error"] or "") and "\x1b" not in (r["error"] or "")
        assert "quotaexceeded" in r["error"] and "\x00" not in (r["attempts"] or "")
    [billed] = gw.usage(key_id=gw.key_ids[other])
    assert billed["status"] == "ok" and billed["cost_micro"] > 0
    ledger = assert_ledger_balances(gw, gw.account("uninvolved"))
    assert ledger["spent"] == billed["cost_micro"]  # its debit was not held back
    assert gw.sql("SELECT COUNT(*) AS n FROM ledger_dead_letters") == [{"n": 0}]
    journal = gw.data_dir / "journal"
    assert not journal.exists() or list(journal.iterdir()) == []  # all written

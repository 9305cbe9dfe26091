"""Issue 12, item 11: the SQL reserver fails cleanly while PostgreSQL is unreachable.

The gateway (in-process, SQL reserver forced) reaches PostgreSQL through a TCP proxy that the
test cuts and restores (tests/tcpproxy.py), so the shared server keeps running."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config
from tests.moneykit import MESSAGES
from tests.scaleout_support import assert_ledger_consistent, wait_for
from tests.services import PG_PORT, pg_migrated_url  # noqa: F401  (fixture)
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.scaleout


@pytest.fixture
def pg_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", PG_PORT).up()
    yield proxy
    proxy.close()


def _ask(client: openai.OpenAI, stream: bool) -> Any:
    try:
        if stream:
            return "".join(c.choices[0].delta.content or "" for c in
                           client.chat.completions.create(model="kimi-k2", messages=MESSAGES,
                                                          max_tokens=50, stream=True)
                           if c.choices)
        return client.chat.completions.create(model="kimi-k2", messages=MESSAGES, max_tokens=50)
    except openai.APIStatusError as exc:
        return exc


def test_sql_reserver_answers_503_while_postgresql_is_unreachable(
        fake: FakeUpstream, make_inproc: Any, pg_migrated_url: str,  # noqa: F811
        pg_proxy: TcpProxy) -> None:
    url = pg_migrated_url.replace(f":{PG_PORT}/", f":{pg_proxy.port}/")
    gw = make_inproc(fake_config(fake), env={"SMARTOKEN_DATABASE_URL": url,
                                             "SMARTOKEN_RESERVER": "sql"})
    key = gw.key("team", credit="10")
    aid = gw.account("team")
    client = gw.client(key, timeout=30)
    assert not isinstance(_ask(client, False), Exception)  # the key is now cached
    served = 1
    pg_proxy.down()
    during = [_ask(client, i % 2 == 1) for i in range(12)]
    statuses = [getattr(r, "status_code", 200) for r in during]
    assert set(statuses) == {503}, statuses  # before: 500 internal_error (connection reset)
    for r in during:
        err = r.body if isinstance(r.body, dict) else {}
        assert err.get("code") == "budget_store_unavailable", r.body
        assert "Traceback" not in str(r.body) and "asyncpg" not in str(r.body)
    assert "unhandled error" not in gw.log()
    pg_proxy.up()

    def served_again() -> bool:
        return not isinstance(_ask(client, False), Exception)

    wait_for(served_again, 30, "the gateway to serve again after the outage")
    served += 1
    # Nothing refused was billed; every answered request has its record and its debit.
    rows = gw.wait_usage(served, timeout=30, account_id=aid, status="ok")
    assert len(rows) >= served
    assert assert_ledger_consistent(gw, aid, 10 * 10**6) == sum(r["cost_micro"] for r in rows)

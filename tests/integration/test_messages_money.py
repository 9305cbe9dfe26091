"""Issue 13: the money guarantees of the Chat Completions path, through ``/v1/messages`` with
the official ``anthropic`` SDK: a budget is never overspent under concurrency, and the ledger
balances to the micro-dollar."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic

from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.moneykit import (
    MASTER,
    MAX_TOKENS,
    MESSAGES,
    AdminAPI,
    assert_ledger_balances,
    exact_usage,
    usd,
    worst_case,
)

W = worst_case()


async def _one(client: anthropic.AsyncAnthropic, stream: bool) -> str:
    try:
        if stream:
            async with client.messages.stream(model="kimi-k2", max_tokens=MAX_TOKENS,
                                              messages=MESSAGES) as s:  # type: ignore[arg-type]
                await s.get_final_message()
        else:
            await client.messages.create(model="kimi-k2", max_tokens=MAX_TOKENS,
                                         messages=MESSAGES)  # type: ignore[arg-type]
        return "ok"
    except anthropic.APIStatusError as exc:
        assert exc.response.headers.get("x-should-retry") == "false"
        return f"{exc.status_code}:{exc.body['error']['type']}"  # type: ignore[index]


async def _burst(gw: Gateway, key: str, n: int) -> list[str]:
    client = anthropic.AsyncAnthropic(api_key=key, base_url=gw.base_url, max_retries=0,
                                      timeout=120)
    try:
        return list(await asyncio.gather(*(_one(client, i % 2 == 0) for i in range(n))))
    finally:
        await client.close()


def test_200_concurrent_messages_on_a_budget_that_fits_50(fake: FakeUpstream,
                                                          make_inproc: Any) -> None:
    fake.set(usage=exact_usage(), chunks=3, first_byte_delay=0.05)
    gw = make_inproc(fake_config(fake, models={"kimi-k2": {"routes": [
        {"provider": "fake0", "upstream_model": "kimi-up"}]}}),
        env={"SMARTOKEN_MASTER_KEY": MASTER})
    admin = AdminAPI(gw)
    aid = admin.account("team", credit="10")
    key, kid = admin.key(aid, daily_budget=usd(50 * W))

    results = asyncio.run(_burst(gw, key, 200))

    assert results.count("ok") == 50, sorted(set(results))
    assert results.count("429:rate_limit_error") == 150
    recs = gw.wait_usage(50, key_id=kid)
    assert len(recs) == 50 and all(r["status"] == "ok" for r in recs)
    assert all(r["protocol"] == "messages" for r in recs)
    assert sum(r["cost_micro"] for r in recs) == 50 * W  # spend == budget, never more
    ledger = assert_ledger_balances(gw, aid)
    assert ledger["spent"] == 50 * W and ledger["balance"] == 10_000_000 - 50 * W

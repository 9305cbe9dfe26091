"""Helpers shared by the scale-out tests: exact-cost requests, load spread over replicas, and
the ledger checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai

from smartoken import tokens
from smartoken.catalog.builtin import builtin_catalog
from smartoken.relay.pipeline import PROMPT_HEADROOM_ADD, PROMPT_HEADROOM_DEN, PROMPT_HEADROOM_NUM
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.moneykit import assert_ledger_balances

PRICE = builtin_catalog().models["kimi-k2"].price
MESSAGES = [{"role": "user", "content": "Say something about scale-out."}]
MAX_TOKENS = 200
# Reservation TTL in these tests: a killed replica's reservations expire after 10 s. Shorter TTLs
# risk a live reservation being swept on a host so loaded that heartbeats run late.
TTL = "10"


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


async def one_request(client: openai.AsyncOpenAI, **kw: Any) -> Any:
    try:
        return await client.chat.completions.create(
            model="kimi-k2", messages=MESSAGES, max_tokens=MAX_TOKENS, **kw)
    except openai.APIStatusError as exc:
        return exc


def spread(gws: list[Gateway], key: str, n: int, **kw: Any) -> list[Any]:
    async def main() -> list[Any]:
        clients = [gw.async_client(key, timeout=120) for gw in gws]
        try:
            return await asyncio.gather(*(one_request(clients[i % len(clients)], **kw)
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
    """The ledger of record: every check of ``assert_ledger_balances``, each billed usage record
    matched by its own debit of the same amount, and the wallet equal to what was credited
    minus what was spent, to the micro-dollar. Returns the total spend."""
    ledger = assert_ledger_balances(gw, account_id)
    unmatched = gw.sql("SELECT u.id FROM usage_records u LEFT JOIN wallet_transactions t "
                       "ON t.request_id = u.id WHERE u.account_id = :a AND u.cost_micro > 0 "
                       "AND (t.id IS NULL OR t.amount_micro != -u.cost_micro)", a=account_id)
    assert unmatched == []
    assert ledger["balance"] == credited - ledger["spent"]
    return ledger["spent"]


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")

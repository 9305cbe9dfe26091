"""Router, breaker and context sizing without a server."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from smartoken import tokens
from smartoken.catalog.model import Catalog, ModelSpec
from smartoken.config import RouteConfig
from smartoken.money import Price
from smartoken.relay import chain, context
from smartoken.routing.health import CLOSED, HALF_OPEN, OPEN, BreakerPolicy, HealthBoard
from smartoken.routing.router import Router

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_weights_hold_over_2000_draws() -> None:
    routes = tuple(RouteConfig("m", f"p{i}", "u", priority=5, weight=w)
                   for i, w in enumerate((1, 2, 7)))
    router = Router(routes, HealthBoard(), random.Random(1234))
    first = [next(router.plan("m")).provider for _ in range(2000)]
    for provider, share in (("p0", 0.1), ("p1", 0.2), ("p2", 0.7)):
        expected = 2000 * share
        sd = (2000 * share * (1 - share)) ** 0.5
        assert abs(first.count(provider) - expected) < 4 * sd, (provider, first.count(provider))


def test_plan_never_repeats_and_tiers_in_order() -> None:
    routes = (RouteConfig("m", "a", "u", 10, 1), RouteConfig("m", "b", "u", 10, 5),
              RouteConfig("m", "c", "u", 1, 1))
    router = Router(routes, HealthBoard(), random.Random(7))
    for _ in range(200):
        order = [r.provider for r in router.plan("m")]
        assert sorted(order[:2]) == ["a", "b"] and order[2] == "c" and len(order) == 3


def test_breaker_cycle_with_a_fake_clock() -> None:
    now = [0.0]
    board = HealthBoard(BreakerPolicy(consecutive_failures=2, cooldown=10), clock=lambda: now[0])
    board.failure("r", "boom")
    assert board.available("r")
    board.failure("r", "boom")
    assert board.routes["r"].state == OPEN and not board.available("r")
    now[0] = 10.5
    assert board.available("r") and board.routes["r"].state == HALF_OPEN
    assert not board.available("r")  # one probe at a time
    board.success("r", 12.0)
    assert board.routes["r"].state == CLOSED and board.available("r")
    board.failure("r", "quota", kind="quota")
    assert board.routes["r"].open_until - now[0] >= 600
    board.failure("x", "slow down", kind="rate_limited", retry_after=3)
    assert board.routes["x"].state == OPEN and board.routes["x"].open_until == now[0] + 3



def test_panic_names_the_route_that_reopens_first() -> None:
    """Issue 12 item 14: with every breaker open, the route whose cooldown ends first."""
    now = [0.0]
    board = HealthBoard(BreakerPolicy(consecutive_failures=1, cooldown=10), clock=lambda: now[0])
    routes = tuple(RouteConfig(model="m", provider=p, upstream_model="u") for p in ("a", "b"))
    router = Router(routes, board)
    a, b = router.routes("m")
    board.failure(a.id, "boom", retry_after=20)
    board.failure(b.id, "boom", retry_after=5)
    assert list(router.plan("m")) == []
    assert router.panic("m") == b
    assert router.panic("unknown") is None

def _doc(n_words: int) -> str:
    rng = random.Random(5)
    words = ["context", "window", "gateway", "token", "route", "the", "of", "中文", "模型",
             "def", "return", "{", "}", "12345", "fallback", "breaker"]
    return " ".join(rng.choice(words) for _ in range(n_words))


def test_small_prompts_are_counted_exactly() -> None:
    msgs = [{"role": "user", "content": "hello there, how are you?"}]
    size = context.size_prompt(msgs)
    assert size.exact and size.tokens == size.upper == tokens.count_messages(msgs)


def test_large_prompt_estimate_is_close_and_upper_is_safe() -> None:
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": _doc(120_000)}]
    size = context.size_prompt(msgs)
    exact = tokens.count_messages(msgs)
    assert not size.exact
    assert abs(size.tokens - exact) / exact < 0.04
    assert size.upper >= exact


class _State:
    def __init__(self, catalog: Catalog, router: Router) -> None:
        self.catalog, self.router = catalog, router


def test_chain_keeps_only_fallbacks_that_fit_and_have_routes() -> None:
    cat = Catalog()
    for mid, ctx, out in (("a", 8000, 1000), ("big", 128000, 4000), ("small", 4000, 1000),
                          ("unrouted", 128000, 1000)):
        cat.add_model(ModelSpec(mid, "f", ctx, out, Price(1, 1),
                                fallbacks=("small", "unrouted", "big") if mid == "a" else ()))
    router = Router(tuple(RouteConfig(m, "p", m) for m in ("a", "big", "small")), HealthBoard())
    state: Any = _State(cat, router)
    legs = chain.plan(state, cat.models["a"], 5000, None, NOW)
    assert [(leg.spec.id, leg.max_output) for leg in legs] == [("a", 1000), ("big", 4000)]
    legs = chain.plan(state, cat.models["a"], 100, 2000, NOW)
    assert [leg.spec.id for leg in legs] == ["a", "small", "big"]

"""Route selection: highest priority tier first, weighted draw inside a tier, never the same
route twice in one request, open breakers skipped. Pure: no I/O.

Panic mode: when every route of a model has an open breaker, ``panic`` names the one whose
cooldown ends first, so a model with a single route (or a pool that failed together) keeps
being tried instead of answering 503 for the whole cooldown (``relay.chain.routes``)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from smartoken.config import RouteConfig
from smartoken.routing.health import HealthBoard


@dataclass(frozen=True, slots=True)
class Route:
    id: str
    model: str
    provider: str
    upstream_model: str
    priority: int
    weight: int


class Router:
    def __init__(self, routes: tuple[RouteConfig, ...], health: HealthBoard,
                 rng: random.Random | None = None) -> None:
        self.health = health
        self._rng = rng or random.Random()
        self._tiers: dict[str, list[list[Route]]] = {}
        self.set_routes(routes)

    def set_routes(self, routes: tuple[RouteConfig, ...]) -> None:
        by_model: dict[str, dict[int, list[Route]]] = {}
        for r in routes:
            if not r.enabled:
                continue
            route = Route(f"{r.model}:{r.provider}/{r.upstream_model}", r.model, r.provider,
                          r.upstream_model, r.priority, r.weight)
            by_model.setdefault(r.model, {}).setdefault(r.priority, []).append(route)
        self._tiers = {
            model: [tiers[p] for p in sorted(tiers, reverse=True)]
            for model, tiers in by_model.items()
        }

    def has_routes(self, model: str) -> bool:
        return model in self._tiers

    def all_routes(self) -> list[Route]:
        return [r for tiers in self._tiers.values() for tier in tiers for r in tier]

    def routes(self, model: str) -> list[Route]:
        return [r for tier in self._tiers.get(model, []) for r in tier]

    def plan(self, model: str) -> Iterator[Route]:
        """Yield routes in the order to try them. Routes with an open breaker are skipped; if
        every route of the model is open, the ones cooling down are not tried at all."""
        for tier in self._tiers.get(model, []):
            if len(tier) == 1:
                if self.health.available(tier[0].id):
                    yield tier[0]
                continue
            remaining = list(tier)
            while remaining:
                total = sum(r.weight for r in remaining)
                pick = self._rng.uniform(0, total)
                acc = 0.0
                chosen = remaining[-1]
                for r in remaining:
                    acc += r.weight
                    if pick <= acc:
                        chosen = r
                        break
                remaining.remove(chosen)
                if self.health.available(chosen.id):
                    yield chosen

    def panic(self, model: str) -> Route | None:
        """The route of ``model`` whose breaker reopens first (None if it has no routes)."""
        routes = self.routes(model)
        if not routes:
            return None
        return min(routes, key=lambda r: self.health.reopens_at(r.id))

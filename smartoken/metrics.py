"""Prometheus metrics: counters and histograms fed from the one place every request ends.

``Metrics.observe(record)`` is called with each usage record (``relay.pipeline._record``);
``Metrics.refused(status)`` with each request refused before it reached the routing stage
(rendered errors in ``app.py``). Both are synchronous and cheap: label children are cached by
their label tuple, so a request costs a dict lookup and a few increments.

Money is exported as an integer counter of micro-USD (``smartoken_cost_micro_usd_total``):
divide by 1e6 for dollars. Keys are labelled by their numeric id, never by any part of the
secret.

Several workers (``--workers N``): prometheus-client's multiprocess mode. Every worker writes
its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (the CLI sets and wipes it) and a scrape of
any worker aggregates them all; the live gauges (in-flight reservations, ledger queue, breaker
state) are refreshed once a second by each worker and summed (``livesum``) or maxed across
the live workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from smartoken.ledger.records import UsageRecord

if TYPE_CHECKING:
    from smartoken.budget.contract import Reserver

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
BREAKER_VALUE = {"closed": 0, "half_open": 1, "open": 2}
REFUSED = "refused"
CONTENT_TYPE = CONTENT_TYPE_LATEST


class LiveSources(Protocol):
    """What the live gauges read: ``AppState`` satisfies it."""

    @property
    def reserver(self) -> Reserver: ...

    @property
    def ledger(self) -> Any: ...

    @property
    def router(self) -> Any: ...


class Metrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "smartoken_requests", "Requests by model, route, outcome status and HTTP code "
            "(status 'refused': refused before routing; model and route are then empty).",
            ["model", "route", "status", "code"], registry=r)
        self.errors = Counter(
            "smartoken_request_errors", "Requests that did not end 'ok' (subset of "
            "smartoken_requests_total).", ["model", "route", "status", "code"], registry=r)
        self.latency = Histogram(
            "smartoken_request_duration_seconds", "Gateway latency from request to last byte.",
            ["model", "route", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram(
            "smartoken_time_to_first_token_seconds", "Time to the first streamed token.",
            ["model", "route"], buckets=TTFT_BUCKETS, registry=r)
        self.tokens = Counter(
            "smartoken_tokens", "Tokens billed, by model, key id and kind (prompt, completion, "
            "cached, reasoning).", ["model", "key", "kind"], registry=r)
        self.cost = Counter(
            "smartoken_cost_micro_usd", "Cost billed in micro-USD (1e-6 USD), by model and "
            "key id.", ["model", "key"], registry=r)
        self.overrun = Counter(
            "smartoken_overrun_micro_usd", "Cost billed above the request's reservation, in "
            "micro-USD: an upstream reported more than the gateway's sizing allowed for.",
            ["model"], registry=r)
        self.breaker = Gauge(
            "smartoken_route_breaker_state", "Circuit breaker per route: 0 closed, 1 half-open, "
            "2 open.", ["route"], registry=r, multiprocess_mode="max")
        self.in_flight = Gauge(
            "smartoken_reservations_in_flight", "Budget reservations held by requests in flight.",
            registry=r, multiprocess_mode="livesum")
        self.ledger_pending = Gauge(
            "smartoken_ledger_pending_records", "Usage records queued for the batch writer.",
            registry=r, multiprocess_mode="livesum")
        self.dead_letters = Counter(
            "smartoken_ledger_dead_letters", "Usage records the database refused even alone: "
            "kept in ledger_dead_letters and billed through a stand-in record.", registry=r)
        self._by_outcome: dict[tuple[str, str | None, str, int], tuple[Any, Any, Any]] = {}
        self._by_key: dict[tuple[str, int], tuple[Any, Any, Any, Any, Any]] = {}
        self._ttft: dict[tuple[str, str | None], Any] = {}
        self._refused: dict[int, tuple[Any, Any]] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Metrics:
        env = os.environ if env is None else env
        return cls(env.get(MULTIPROC_ENV) or None)

    # ------------------------------------------------------------------ hot path

    def observe(self, rec: UsageRecord) -> None:
        """Count one finished request from its usage record. Never awaits."""
        okey = (rec.model, rec.route, rec.status, rec.http_status)
        outcome = self._by_outcome.get(okey)
        if outcome is None:
            labels = (rec.model, rec.route or "", rec.status, str(rec.http_status))
            outcome = self._by_outcome[okey] = (
                self.requests.labels(*labels),
                self.errors.labels(*labels) if rec.status != "ok" else None,
                self.latency.labels(*labels[:3]),
            )
        count, error, latency = outcome
        count.inc()
        if error is not None:
            error.inc()
        latency.observe(rec.latency_ms / 1000)
        if rec.ttft_ms is not None:
            tkey = (rec.model, rec.route)
            ttft = self._ttft.get(tkey)
            if ttft is None:
                ttft = self._ttft[tkey] = self.ttft.labels(rec.model, rec.route or "")
            ttft.observe(rec.ttft_ms / 1000)
        kkey = (rec.model, rec.key_id)
        by_key = self._by_key.get(kkey)
        if by_key is None:
            key = str(rec.key_id)
            by_key = self._by_key[kkey] = (
                self.tokens.labels(rec.model, key, "prompt"),
                self.tokens.labels(rec.model, key, "completion"),
                self.tokens.labels(rec.model, key, "cached"),
                self.tokens.labels(rec.model, key, "reasoning"),
                self.cost.labels(rec.model, key),
            )
        prompt, completion, cached, reasoning, cost = by_key
        if rec.prompt_tokens:
            prompt.inc(rec.prompt_tokens)
        if rec.completion_tokens:
            completion.inc(rec.completion_tokens)
        if rec.cached_tokens:
            cached.inc(rec.cached_tokens)
        if rec.reasoning_tokens:
            reasoning.inc(rec.reasoning_tokens)
        if rec.cost_micro:
            cost.inc(rec.cost_micro)

    def overran(self, model: str, excess: int) -> None:
        """Count what a request was billed above its reservation. Never awaits."""
        self.overrun.labels(model).inc(excess)

    def refused(self, status: int) -> None:
        """Count a request refused before it reached routing (no usage record)."""
        pair = self._refused.get(status)
        if pair is None:
            labels = ("", "", REFUSED, str(status))
            pair = self._refused[status] = (self.requests.labels(*labels),
                                            self.errors.labels(*labels))
        pair[0].inc()
        pair[1].inc()

    # ------------------------------------------------------------------ gauges and scrape

    def refresh(self, src: LiveSources) -> None:
        """Read the live gauges from the gateway's state."""
        self.in_flight.set(getattr(src.reserver, "in_flight", 0))
        self.ledger_pending.set(getattr(src.ledger, "pending", 0))
        now = time.monotonic()
        for route_id, h in list(src.router.health.routes.items()):
            state = h.state
            if state == "open" and now >= h.open_until:
                state = "half_open"  # cooled down: the next request probes it
            self.breaker.labels(route_id).set(BREAKER_VALUE.get(state, 0))

    def start(self, src: LiveSources) -> list[asyncio.Task[None]]:
        """The background tasks this needs (tracked and cancelled by ``AppState``)."""
        if not self.multiprocess_dir:
            return []
        return [asyncio.get_running_loop().create_task(self.refresh_loop(src),
                                                       name="metrics-refresh")]

    async def refresh_loop(self, src: LiveSources, interval: float = 1.0) -> None:
        """Multiprocess mode: each worker publishes its live gauges once a second."""
        while True:
            with contextlib.suppress(Exception):
                self.refresh(src)
            await asyncio.sleep(interval)

    def render(self, src: LiveSources) -> bytes:
        self.refresh(src)
        if self.multiprocess_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry)
        return generate_latest(self.registry)

    def close(self) -> None:
        """A worker leaving: its live gauges stop counting in multiprocess mode."""
        if self.multiprocess_dir:
            with contextlib.suppress(Exception):
                multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)


def prepare_multiprocess_dir(path: str, remove: Callable[[str], None] = os.remove) -> None:
    """Empty the folder before the workers start (stale files would add old counts)."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            remove(os.path.join(path, name))

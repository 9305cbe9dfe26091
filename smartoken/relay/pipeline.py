"""The hot path, top to bottom: authenticate, resolve, count, reserve, route, call, relay,
settle, record.

Billing never depends on the client staying connected: settlement and the usage record are
synchronous calls made in ``finally`` blocks (no ``await``), so a cancelled handler still
leaves exactly one record and releases what it did not spend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from smartoken import tokens
from smartoken.auth.keys import KeyContext
from smartoken.budget.reserver import Reservation
from smartoken.catalog.model import ModelSpec
from smartoken.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    UpstreamFailed,
)
from smartoken.files.expand import expand_files
from smartoken.ledger import records
from smartoken.ledger.records import UsageRecord
from smartoken.logs import log_request
from smartoken.money import MicroUSD, Price
from smartoken.providers.base import JSON, NATIVE, UpstreamError, Usage
from smartoken.relay import chain, context
from smartoken.relay.chain import Leg
from smartoken.relay.context import fit_context as fit_context  # re-exported
from smartoken.routing.router import Route
from smartoken.state import AppState

log = logging.getLogger("smartoken.relay")

# Prompt estimates are reserved with headroom: upstream tokenizers differ from ours.
PROMPT_HEADROOM_NUM, PROMPT_HEADROOM_DEN, PROMPT_HEADROOM_ADD = 5, 4, 16


@dataclass(slots=True)
class Call:
    """One chat request as it moves through the pipeline."""

    request_id: str
    key: KeyContext
    body: JSON
    spec: ModelSpec
    requested_model: str
    stream: bool
    include_usage: bool
    prompt_tokens: int
    max_output: int
    started: float  # perf_counter
    price: Price  # the price of ``spec`` when the request started: reserved and settled by it
    protocol: str  # the client protocol's name (``protocols/``), noted on the usage record
    reservation: Reservation | None = None
    attempts: list[JSON] = field(default_factory=list)
    chain: tuple[Leg, ...] = ()  # the models to try (fallbacks after the requested one)
    native: JSON | None = None  # the client's own request, for a provider speaking its protocol
    abandoned: bool = False  # the client hung up before a unary answer was sent


def _elapsed_ms(call: Call) -> int:
    """When an attempt ended, in ms since the request started (the console's attempt chain)."""
    return int((time.perf_counter() - call.started) * 1000)


def _now_utc() -> datetime:
    return datetime.now(UTC)


def start_instant(state: AppState) -> datetime:
    """The instant a request starts, on the gateway's clock (the budget windows' clock): the
    instant its prices are read at."""
    return datetime.fromtimestamp(state.windows.clock(), UTC)


def resolve_model(state: AppState, key: KeyContext, model_id: str) -> ModelSpec:
    spec = state.catalog.get(model_id)
    if spec is None:
        raise NotFound(f"The model '{model_id}' does not exist. GET /v1/models lists the models "
                       "this key may use.", param="model")
    if key.families is not None and spec.family not in key.families:
        raise PermissionDenied(
            f"This API key may not use '{model_id}' (family '{spec.family}'); it is limited to "
            f"{', '.join(sorted(key.families))}.", param="model")
    return spec


def requested_output(body: JSON) -> int | None:
    value = body.get("max_completion_tokens")
    if value is None:
        value = body.get("max_tokens")
    return value if isinstance(value, int) else None


def worst_case_cost(call: Call) -> int:
    """The most this request may cost: the dearest model of its chain at its full output."""
    n = call.body.get("n")
    choices = n if isinstance(n, int) and n > 0 else 1
    prompt = call.prompt_tokens * PROMPT_HEADROOM_NUM // PROMPT_HEADROOM_DEN + PROMPT_HEADROOM_ADD
    if len(call.chain) > 1:
        return max(leg.price.worst_case(prompt, leg.max_output * choices) for leg in call.chain)
    return call.price.worst_case(prompt, call.max_output * choices)


async def prepare_embeddings(state: AppState, request_id: str, key: KeyContext,
                             data: JSON, protocol: str = "embeddings") -> Call:
    """Resolve and reserve a validated embeddings body (``protocols/embeddings.py``)."""
    requested = data["model"]
    spec = resolve_model(state, key, requested)
    if spec.kind != "embedding":
        raise InvalidRequest(f"'{requested}' is not an embedding model.", param="model")
    inp = data["input"]
    items = inp if isinstance(inp, list) else [inp]
    prompt = sum(len(x) if isinstance(x, list) else 1 if isinstance(x, int)
                 else tokens.count_text(x) for x in items)
    if not state.router.has_routes(spec.id):
        raise UpstreamFailed(f"No route is configured for '{spec.id}'.", status=503)
    call = Call(request_id, key, data, spec, requested, False, False, prompt, 0,
                time.perf_counter(), spec.price_at(start_instant(state)), protocol)
    await state.limiter.admit(key, prompt)
    call.reservation = await state.reserver.reserve(key, worst_case_cost(call),
                                                    request_id=request_id)
    return call


async def prepare(state: AppState, request_id: str, key: KeyContext, data: JSON,
                  protocol: str = "chat", native: JSON | None = None) -> Call:
    """Resolve, fit and reserve a canonical chat body (already validated by its protocol's
    ``parse``). Raises before anything is recorded or reserved."""
    requested = data["model"]
    spec = resolve_model(state, key, requested)
    if spec.kind != "chat":
        raise InvalidRequest(f"'{requested}' is an embedding model; use /v1/embeddings.",
                             param="model")
    data = await expand_files(state.engine, state.files, key.account_id, data)  # file parts
    wanted = requested_output(data)
    spec, prompt = await context.fit(state, spec, data, wanted)
    legs = chain.plan(state, spec, prompt, wanted, start_instant(state))
    if not state.router.has_routes(spec.id) and len(legs) == 1:
        raise UpstreamFailed(f"No route is configured for '{spec.id}'.", status=503)
    stream = bool(data.get("stream"))
    opts = data.get("stream_options")
    include_usage = stream and isinstance(opts, dict) and bool(opts.get("include_usage"))
    call = Call(request_id, key, data, spec, requested, stream, include_usage, prompt,
                legs[0].max_output, time.perf_counter(), legs[0].price, protocol, chain=legs,
                native=native)
    await state.limiter.admit(key, prompt)
    call.reservation = await state.reserver.reserve(key, worst_case_cost(call),
                                                    request_id=request_id)
    return call


def upstream_body(call: Call, route: Route, provider: Any = None) -> JSON:
    """What the provider is sent: the canonical body with the route's model id, the model's
    fixed settings and the reserved output cap; plus, under ``NATIVE``, the client's own
    request when the provider speaks the client's protocol itself (``native_protocol``)."""
    body = dict(call.body)
    body["model"] = route.upstream_model
    for name, value in call.spec.params.items():  # the public id's fixed settings
        body.setdefault(name, value)
    if call.spec.kind == "embedding":
        return body
    # What was reserved is what may be spent, sent in the one field the dialect honours (an
    # upstream that ignores ``max_completion_tokens`` would otherwise write its default length).
    body.pop("max_completion_tokens", None)
    body.pop("max_tokens", None)
    field = getattr(getattr(provider, "dialect", None), "output_field", "max_tokens")
    body[field] = call.max_output
    if not call.include_usage:
        body.pop("stream_options", None)
    if call.native is not None and getattr(provider, "native_protocol", None) == call.protocol:
        body[NATIVE] = call.native
    return body


def _record(state: AppState, call: Call, *, route: Route | None, status: str, http: int,
            usage: Usage | None, estimated: bool, ttft: float | None,
            error: str | None = None) -> int:
    """Settle the reservation to the actual cost and queue the usage record. Never awaits."""
    u = usage or Usage()
    cost = call.price.cost(u.prompt_tokens, u.completion_tokens, u.cached_tokens,
                           u.cache_write_tokens)
    res = call.reservation
    if res is not None:
        # The charge is the actual cost, also above the reservation: the upstream bills it.
        cost = MicroUSD(state.reserver.settle(res, cost))
        if cost > res.amount:
            state.metrics.overran(call.spec.id, cost - res.amount)
            log.warning("request %s was billed %d micro-USD above its reservation",
                        call.request_id, cost - res.amount)
    state.limiter.charge(call.key, u.completion_tokens)
    rec = usage_record(state, call, route=route, status=status, http=http, usage=u,
                       estimated=estimated, ttft=ttft, error=error, cost=cost)
    state.ledger.record(rec)
    state.metrics.observe(rec)
    if state.tracer is not None:
        state.tracer.record(rec)
    log_request(rec, call.key.prefix)
    return cost


def usage_record(state: AppState, call: Call, *, route: Route | None, status: str, http: int,
                 usage: Usage, estimated: bool, ttft: float | None, error: str | None,
                 cost: int) -> UsageRecord:
    """The usage record of ``call`` (settled or not; see ``_record``)."""
    u, res = usage, call.reservation
    provider = state.providers.get(route.provider) if route else None
    return UsageRecord(
        id=call.request_id,
        created_at=datetime.fromtimestamp(res.started_at, UTC) if res else _now_utc(),
        account_id=call.key.account_id,
        key_id=call.key.key_id,
        requested_model=call.requested_model,
        model=call.spec.id,
        day=res.day if res else "",
        month=res.month if res else "",
        stream=call.stream,
        route=route.id if route else None,
        provider=provider.name if provider else (route.provider if route else None),
        upstream_model=route.upstream_model if route else None,
        status=status,
        http_status=http,
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        cached_tokens=u.cached_tokens,
        cache_write_tokens=u.cache_write_tokens,
        reasoning_tokens=u.reasoning_tokens,
        usage_estimated=estimated,
        latency_ms=int((time.perf_counter() - call.started) * 1000),
        ttft_ms=None if ttft is None else int((ttft - call.started) * 1000),
        cost_micro=cost,
        attempts=orjson.dumps(call.attempts).decode() if call.attempts else None,
        error=error,
        protocol=call.protocol,
    )


def _fail_over_error(call: Call, last: UpstreamError | None) -> UpstreamFailed:
    tried = ", ".join(f"{a['route']} ({a['error']})" for a in call.attempts) or "none available"
    kinds = {a["kind"] for a in call.attempts}
    status = 504 if kinds == {"timeout"} else 503 if kinds <= {
        "connect", "rate_limited", "quota", "timeout", "unavailable", "config", "auth"} else 502
    if not call.attempts:
        status = 503
    return UpstreamFailed(f"Every route for '{call.requested_model}' failed. Tried: {tried}.",
                          status=status)


def _provider_for(state: AppState, route: Route) -> Any:
    return state.providers[route.provider]


def _note_failure(state: AppState, call: Call, route: Route, exc: UpstreamError) -> None:
    call.attempts.append({"route": route.id, "kind": exc.kind, "status": exc.status,
                          "error": exc.message, "at_ms": _elapsed_ms(call)})
    if exc.kind != "client":
        state.router.health.failure(route.id, exc.message, kind=exc.kind,
                                    retry_after=exc.retry_after)


def _attempt_failed(state: AppState, call: Call, route: Route,
                    exc: UpstreamError) -> UpstreamError:
    """Note a failed attempt. A non-retryable one (the request itself is bad) ends the
    request: recorded as rejected and raised to the client as the upstream's 4xx."""
    _note_failure(state, call, route, exc)
    if not exc.retryable:
        _record(state, call, route=route, status="rejected", http=exc.status, usage=None,
                estimated=False, ttft=None, error=exc.message)
        raise _client_error(exc) from None
    return exc


def _client_closed(state: AppState, call: Call, route: Route) -> None:
    _record(state, call, route=route, status=records.CLIENT_CLOSED, http=499, usage=None,
            estimated=True, ttft=None, error="client closed the request")


def _client_error(exc: UpstreamError) -> GatewayError:
    body = exc.body or {}
    status = exc.status if 400 <= exc.status < 500 and exc.status not in (401, 403) else 400
    err = InvalidRequest(str(body.get("message") or exc.message),
                         code=str(body.get("code") or "upstream_invalid_request"))
    err.status = 400 if status == 422 else status
    return err


# ------------------------------------------------------------------ non-streaming


async def complete(state: AppState, call: Call, operation: str = "complete") -> JSON:
    """A unary call (``complete`` or ``embed``) with fail-over across the model's routes."""
    last: UpstreamError | None = None
    for route in chain.routes(state, call):
        provider = _provider_for(state, route)
        t0 = time.perf_counter()
        try:
            resp = await getattr(provider, operation)(upstream_body(call, route, provider))
        except UpstreamError as exc:
            last = _attempt_failed(state, call, route, exc)
            continue
        except BaseException:
            _client_closed(state, call, route)
            raise
        state.router.health.success(route.id, (time.perf_counter() - t0) * 1000)
        usage = provider.dialect.usage(resp)
        estimated = usage is None
        if usage is None:
            usage = Usage(call.prompt_tokens, _completion_estimate(resp))
        elif usage.cached_tokens and isinstance(resp.get("usage"), dict):
            # cache hits in OpenAI's place too (DeepSeek and Kimi report them elsewhere)
            details = resp["usage"].setdefault("prompt_tokens_details", {})
            if isinstance(details, dict):
                details.setdefault("cached_tokens", usage.cached_tokens)
        resp["model"] = call.requested_model
        if call.attempts:
            call.attempts.append({"route": route.id, "kind": "ok", "status": 200, "error": "",
                                  "at_ms": _elapsed_ms(call)})
        if call.abandoned:  # the client hung up: billed what the upstream reports all the same
            _record(state, call, route=route, status=records.CLIENT_CLOSED, http=499,
                    usage=usage, estimated=estimated, ttft=None,
                    error="client closed the request before the answer")
        else:
            _record(state, call, route=route, status=records.OK, http=200, usage=usage,
                    estimated=estimated, ttft=None)
        return resp
    err = _fail_over_error(call, last)
    _record(state, call, route=None, status=records.UPSTREAM_ERROR, http=err.status, usage=None,
            estimated=False, ttft=None, error=err.message)
    raise err


def _completion_estimate(resp: JSON) -> int:
    texts: list[str] = []
    for choice in resp.get("choices") or []:
        msg = choice.get("message") or {} if isinstance(choice, dict) else {}
        for f in ("content", "reasoning_content"):
            if isinstance(msg.get(f), str):
                texts.append(msg[f])
        for c in msg.get("tool_calls") or []:
            fn = c.get("function") or {}
            texts.append(str(fn.get("name", "")) + str(fn.get("arguments", "")))
    return tokens.count_text("".join(texts))


# ------------------------------------------------------------------ streaming


class Delivered:
    """What reached the client: text for estimating, usage if the upstream reported it."""

    __slots__ = ("finished", "first_at", "parts", "usage")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.usage: Usage | None = None
        self.first_at: float | None = None
        self.finished = False

    def take(self, chunk: JSON) -> None:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            if delta:
                for f in ("content", "reasoning_content"):
                    v = delta.get(f)
                    if v:
                        self.parts.append(v)
                for c in delta.get("tool_calls") or ():
                    fn = c.get("function") or {}
                    self.parts.append((fn.get("name") or "") + (fn.get("arguments") or ""))
            if choice.get("finish_reason"):
                self.finished = True

    def estimate(self, prompt: int) -> Usage:
        return Usage(prompt, tokens.count_text("".join(self.parts)))


async def open_stream(state: AppState, call: Call) -> tuple[
        Route, Any, AsyncIterator[list[JSON]], list[JSON]]:
    """Try routes until one yields its first chunks (``Provider.stream``: the chunks of one
    upstream read); before that, failures fail over."""
    last: UpstreamError | None = None
    for route in chain.routes(state, call):
        provider = _provider_for(state, route)
        it = provider.stream(upstream_body(call, route, provider))
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            exc = UpstreamError(f"{route.provider}: empty stream", kind="cut")
            _note_failure(state, call, route, exc)
            last = exc
            continue
        except UpstreamError as exc:
            await it.aclose()
            last = _attempt_failed(state, call, route, exc)
            continue
        except BaseException:
            await it.aclose()
            _client_closed(state, call, route)
            raise
        return route, provider, it, first
    err = _fail_over_error(call, last)
    _record(state, call, route=None, status=records.UPSTREAM_ERROR, http=err.status, usage=None,
            estimated=False, ttft=None, error=err.message)
    raise err

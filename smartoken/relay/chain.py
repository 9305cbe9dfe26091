"""The attempt chain of a request: the requested model's routes, then its fallback models'.

A model's ``fallbacks`` (``kimi-k2`` -> ``deepseek-chat``) are tried, in order, after every route
of the model failed with a retryable error. A fallback is part of the chain only when the prompt
plus the output it may produce fits its context window and it has a route.

Billing: the model that answered is billed at its own price (the usage record's ``model`` is the
answering model, ``requested_model`` what the client asked for). The reservation is the worst
case over every model of the chain, so switching to a dearer fallback can never overspend.
Each leg carries its model's price at the instant the request started: the reservation and the
settlement read that one snapshot, whatever the clock or the catalog says by the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from smartoken.catalog.model import ModelSpec
from smartoken.money import Price
from smartoken.routing.router import Route

if TYPE_CHECKING:
    from smartoken.relay.pipeline import Call
    from smartoken.state import AppState


@dataclass(frozen=True, slots=True)
class Leg:
    spec: ModelSpec
    max_output: int  # the output this model may produce for this prompt (max_tokens sent)
    price: Price  # the model's price when the request started


def leg_for(spec: ModelSpec, prompt: int, wanted: int | None, when: datetime) -> Leg | None:
    """The leg for ``spec``, or None when prompt plus output does not fit its window."""
    room = spec.context_window - prompt
    if wanted is not None:
        return Leg(spec, wanted, spec.price_at(when)) if wanted <= room else None
    if room < 1:
        return None
    return Leg(spec, max(1, min(spec.max_output, room)), spec.price_at(when))


def plan(state: AppState, spec: ModelSpec, prompt: int, wanted: int | None,
         when: datetime) -> tuple[Leg, ...]:
    """The models to try, in order; the first is ``spec`` itself (already checked to fit)."""
    room = spec.context_window - prompt
    first = Leg(spec, wanted if wanted is not None else max(1, min(spec.max_output, room)),
                spec.price_at(when))
    if not spec.fallbacks:
        return (first,)
    legs = [first]
    seen = {spec.id}
    for fb_id in spec.fallbacks:
        fb = state.catalog.models.get(fb_id)
        if fb is None or fb.id in seen or not state.router.has_routes(fb.id):
            continue
        seen.add(fb.id)
        leg = leg_for(fb, prompt, wanted, when)
        if leg is not None:
            legs.append(leg)
    return tuple(legs)


def routes(state: AppState, call: Call) -> Iterator[Route]:
    """Every route to try, model by model (or, when every breaker is open, the one that
    reopens first: ``Router.panic``). ``call.spec``, ``call.max_output`` and
    ``call.price`` follow the model being tried, so the record and the bill are the answering
    model's; when the chain is exhausted they are set back to the requested model's."""
    legs = call.chain or (None,)
    tried = False
    for leg in legs:
        if leg is not None:
            call.spec, call.max_output, call.price = leg.spec, leg.max_output, leg.price
        for route in state.router.plan(call.spec.id):
            tried = True
            yield route
    if not tried:
        # Panic mode: every route of every model in the chain is cooling down. Try the
        # first model's route whose cooldown ends first rather than answer 503 for all of it.
        for leg in legs:
            if leg is not None:
                call.spec, call.max_output, call.price = leg.spec, leg.max_output, leg.price
            first_open = state.router.panic(call.spec.id)
            if first_open is not None:
                yield first_open
                break
    if call.chain:
        first = call.chain[0]
        call.spec, call.max_output, call.price = first.spec, first.max_output, first.price

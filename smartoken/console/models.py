"""The model catalog as a comparison table, and a page per model with copy-ready samples."""

from __future__ import annotations

import math
from typing import Any

from starlette.responses import Response

from smartoken.api.models import is_demo
from smartoken.catalog.model import ModelSpec
from smartoken.console.http import Ctx, gateway_url
from smartoken.console.samples import SampleRequest, all_samples
from smartoken.errors import NotFound
from smartoken.i18n.message import N_
from smartoken.state import AppState


def _visible(state: AppState, spec: ModelSpec) -> bool:
    if spec.auto_variants:
        return any(state.router.has_routes(v) for v in spec.auto_variants)
    return state.router.has_routes(spec.id)


def model_rows(state: AppState) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for spec in state.catalog.models.values():
        if not _visible(state, spec):
            continue
        fam = state.catalog.families.get(spec.family)
        rows.append({"spec": spec, "family": fam, "demo": is_demo(state, spec)})
    rows.sort(key=lambda r: (r["spec"].family == "demo", r["family"].name.lower()
                             if r["family"] else r["spec"].family, r["spec"].id))
    return rows


async def models_page(ctx: Ctx) -> Response:
    rows = model_rows(ctx.state)
    families = sorted({(r["spec"].family, r["family"].name if r["family"] else r["spec"].family)
                       for r in rows}, key=lambda f: f[1].lower())
    return ctx.render("models.html", rows=rows, families=families,
                      family_map=ctx.state.catalog.families,
                      demo_only=all(r["demo"] for r in rows if r["spec"].kind == "chat"))


async def model_page(ctx: Ctx) -> Response:
    state = ctx.state
    model_id = ctx.request.path_params["model_id"]
    spec = state.catalog.get(model_id)
    if spec is None or not _visible(state, spec):
        raise NotFound(N_("No model '%(id)s' in this gateway's catalog.", id=model_id))
    fam = state.catalog.families.get(spec.family)
    samples = all_samples(SampleRequest(gateway_url(ctx.request), spec.id)) \
        if spec.kind == "chat" else {}
    routes = state.router.routes(spec.id) if not spec.auto_variants else \
        [r for v in spec.auto_variants for r in state.router.routes(v)]
    return ctx.render("model.html", spec=spec, family=fam, demo=is_demo(state, spec),
                      samples=samples, routes=routes, neighbours=neighbours(state, spec),
                      variants=[state.catalog.models[v] for v in spec.auto_variants])


COMPARE = 4  # one row of the compare grid, two on a phone: never an orphan card


def _distance(a: ModelSpec, b: ModelSpec) -> float:
    """How unlike two models are: price and context window ratios, on a log scale."""
    def ratio(x: float, y: float) -> float:
        return abs(math.log(max(x, 1) / max(y, 1)))
    return (ratio(a.price.input, b.price.input) + ratio(a.price.output, b.price.output)
            + ratio(a.context_window, b.context_window))


def neighbours(state: AppState, spec: ModelSpec) -> list[dict[str, Any]]:
    """The closest chat model of each other family (not aliases or ``auto`` ids): the
    alternatives a user would weigh, one per vendor."""
    best: dict[str, tuple[float, dict[str, Any]]] = {}
    for r in model_rows(state):
        other: ModelSpec = r["spec"]
        if other.family in (spec.family, "demo") or other.kind != "chat" or \
                other.auto_variants or other.id == spec.id:
            continue
        d = _distance(spec, other)
        if other.family not in best or d < best[other.family][0]:
            best[other.family] = (d, r)
    ranked = sorted(best.values(), key=lambda x: x[0])
    return [r for _, r in ranked[:COMPARE]]

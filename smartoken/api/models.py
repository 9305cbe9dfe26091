"""GET /v1/models and /v1/models/{id}: the models this key may use."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from smartoken.api.http import JSONResponse, app_state, authenticate
from smartoken.catalog.model import ModelSpec
from smartoken.errors import NotFound
from smartoken.money import format_usd
from smartoken.state import AppState

CREATED = 1767225600  # 2026-01-01, a fixed date: catalog entries are not time-stamped


def is_demo(state: AppState, spec: ModelSpec) -> bool:
    routes = state.router.routes(spec.id)
    if spec.auto_variants:
        routes = [r for v in spec.auto_variants for r in state.router.routes(v)]
    return bool(routes) and all(state.settings.providers[r.provider].is_demo for r in routes)


def model_object(state: AppState, spec: ModelSpec) -> dict[str, Any]:
    family = state.catalog.families.get(spec.family)
    demo = is_demo(state, spec)
    return {
        "id": spec.id,
        "object": "model",
        "created": CREATED,
        "owned_by": "smartoken-demo" if demo else (family.vendor if family else spec.family),
        "family": spec.family,
        "type": spec.kind,
        "demo": demo,
        "context_window": spec.context_window,
        "max_output_tokens": spec.max_output,
        "capabilities": list(spec.capabilities),
        "pricing": {
            "currency": "USD",
            "unit": "1M tokens",
            "input": format_usd(spec.price.input),
            "output": format_usd(spec.price.output),
            "cached_input": None if spec.price.cached_input is None
            else format_usd(spec.price.cached_input),
            "cache_write": None if spec.price.cache_write is None
            else format_usd(spec.price.cache_write),
            "as_of": spec.price_source.as_of or None,
            "source": spec.price_source.url,
            "windows": [{"label": w.label, "tz": w.tz, "days": sorted(w.days),
                         "start": w.start.strftime("%H:%M"), "end": w.end.strftime("%H:%M"),
                         "input": format_usd(w.price.input), "output": format_usd(w.price.output),
                         "cached_input": None if w.price.cached_input is None
                         else format_usd(w.price.cached_input)} for w in spec.windows],
        },
        "description": ("DEMO route: deterministic text from the built-in demo provider. "
                        if demo and spec.family != "demo" else "") + spec.description,
    }


def _visible(state: AppState, families: frozenset[str] | None, spec: ModelSpec) -> bool:
    if families is not None and spec.family not in families:
        return False
    if spec.auto_variants:
        return any(state.router.has_routes(v) for v in spec.auto_variants)
    return state.router.has_routes(spec.id)


async def list_models(request: Request) -> JSONResponse:
    state = app_state(request)
    key = await authenticate(request)
    data = [model_object(state, s) for s in state.catalog.models.values()
            if _visible(state, key.families, s)]
    return JSONResponse({"object": "list", "data": data})


async def get_model(request: Request) -> JSONResponse:
    state = app_state(request)
    key = await authenticate(request)
    model_id = request.path_params["model_id"]
    spec = state.catalog.get(model_id)
    if spec is None or not _visible(state, key.families, spec):
        raise NotFound(f"The model '{model_id}' does not exist or this key may not use it.",
                       param="model")
    return JSONResponse(model_object(state, spec))

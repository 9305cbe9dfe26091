"""Admin pages: providers stored at run time (create, edit, test, delete, with their vendor
keys and routes) and model prices, through the same validation, storage, audit and live
application as ``/admin/providers`` and ``/admin/catalog``.

Forms are plain text where the API takes lists: vendor keys one per line (``KEY`` or
``KEY WEIGHT``), routes one per line (``MODEL [UPSTREAM_MODEL] [PRIORITY] [WEIGHT] [off]``),
headers one per line (``Name: value``). Keys and headers are write-only: an empty box keeps
what is stored.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from smartoken.api import catalog_admin, providers_admin
from smartoken.catalog.model import CAPABILITIES
from smartoken.config import DIALECTS
from smartoken.console.http import Ctx
from smartoken.errors import GatewayError, InvalidRequest
from smartoken.i18n.message import N_
from smartoken.live_providers import apply
from smartoken.store import audit
from smartoken.store import providers as store
from smartoken.store.repo import Conflict

PRICE_FIELDS = ("input", "output", "cached_input", "cache_write")


def actor(ctx: Ctx) -> str:
    return f"console:{ctx.user.name}"


async def _stored(ctx: Ctx) -> list[store.StoredProvider]:
    try:
        box = providers_admin._box(ctx.state)
    except GatewayError:
        return []
    return await store.list_stored(ctx.state.engine, box)


async def providers_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    state = ctx.state
    stored = await _stored(ctx)
    config = state.config or state.settings
    file_names = sorted(n for n, p in config.providers.items() if not p.is_demo)
    edit = ctx.request.query_params.get("edit")
    editing = next((p for p in stored if p.name == edit), None)
    return ctx.render(
        "admin_providers.html", status, stored=stored, file_names=file_names,
        editing=editing, dialects=sorted(d for d in DIALECTS if d != "demo"),
        models=sorted(state.catalog.models), secret_key=bool(state.settings.secret_keys),
        families=sorted(f for f in state.catalog.families if f != "demo"),
        family_map=state.catalog.families,
        capabilities=CAPABILITIES,
        **extra)


def _lines(form: FormData, field: str) -> list[str]:
    text = str(form.get(field, ""))
    if len(text) > 200_000:
        raise InvalidRequest(N_("The %(field)s box is too long.", field=field), param=field)
    return [line.strip() for line in text.splitlines() if line.strip()]


def _int(value: str, field: str, line: int) -> int:
    if not value.isdigit() or len(value) > 6:
        raise InvalidRequest(N_("%(field)s line %(line)s: %(value)s is not a whole number.",
                                field=field, line=line, value=repr(value)), param=field)
    return int(value)


def form_data(form: FormData, creating: bool) -> dict[str, Any]:
    """The form as an ``/admin/providers`` body (validated by ``providers_admin.build``)."""
    data: dict[str, Any] = {"dialect": str(form.get("dialect", "openai")),
                            "base_url": str(form.get("base_url", "")).strip(),
                            "enabled": form.get("enabled") == "on"}
    if creating:
        data["name"] = str(form.get("name", "")).strip()
    keys = []
    for i, line in enumerate(_lines(form, "api_keys"), 1):
        parts = line.split()
        if len(parts) > 2:
            raise InvalidRequest(N_("api_keys line %(line)s: a key, then optionally a weight.",
                                    line=i), param="api_keys")
        keys.append({"key": parts[0], "weight": _int(parts[1], "api_keys", i)}
                    if len(parts) == 2 else parts[0])
    if keys:
        data["api_keys"] = keys
    elif form.get("clear_keys") == "on":
        data["api_keys"] = None
    routes = []
    for i, line in enumerate(_lines(form, "routes"), 1):
        parts = line.split()
        enabled = parts[-1].lower() != "off"
        if not enabled:
            parts = parts[:-1]
        if not parts or len(parts) > 4:
            raise InvalidRequest(N_("routes line %(line)s: MODEL [UPSTREAM_MODEL] [PRIORITY] "
                                    "[WEIGHT] [off].", line=i), param="routes")
        route: dict[str, Any] = {"model": parts[0], "enabled": enabled}
        if len(parts) > 1:
            route["upstream_model"] = parts[1]
        if len(parts) > 2:
            route["priority"] = _int(parts[2], "routes", i)
        if len(parts) > 3:
            route["weight"] = _int(parts[3], "routes", i)
        routes.append(route)
    data["routes"] = routes
    headers = {}
    for i, line in enumerate(_lines(form, "headers"), 1):
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise InvalidRequest(N_("headers line %(line)s: 'Name: value'.", line=i),
                                 param="headers")
        headers[name.strip()] = value.strip()
    if headers:
        data["headers"] = headers
    return data


async def save_provider(ctx: Ctx) -> Response:
    state = ctx.state
    form = await ctx.request.form()
    original = str(form.get("original", ""))
    try:
        box = providers_admin._box(state)
        stored = {p.name: p for p in await store.list_stored(state.engine, box)}
        base = stored.get(original) if original else None
        if original and base is None:
            raise InvalidRequest(N_("No stored provider named %(name)s.", name=repr(original)),
                                 param="name")
        data = form_data(form, creating=base is None)
        p = providers_admin.build(state, data, base)
        if base is None:
            if p.name in state.settings.providers:
                raise InvalidRequest(N_("Provider %(name)s already exists.", name=repr(p.name)),
                                     param="name")
            await store.insert_stored(state.engine, p, box)
        else:
            if "api_keys" not in data and not data.get("headers"):
                p = replace(p, headers=base.headers)
            await store.update_stored(state.engine, p, box)
    except Conflict as exc:
        return await providers_page(ctx, 409, error=exc.args[0])
    except GatewayError as exc:
        return await providers_page(ctx, exc.status, error=exc.text, form=dict(form))
    apply(state, [p])
    await audit.record(state.engine, actor(ctx), "provider.update" if base else
                       "provider.create", f"provider:{p.name}",
                       base.public() if base else None, p.public())
    return RedirectResponse(f"/console/admin/providers?saved={p.name}", 303)


async def delete_provider(ctx: Ctx) -> Response:
    state = ctx.state
    name = ctx.request.path_params["name"]
    stored = {p.name: p for p in await _stored(ctx)}
    if name not in stored:
        return await providers_page(ctx, 404, error=N_("No stored provider named %(name)s.",
                                                       name=repr(name)))
    await store.delete_stored(state.engine, name)
    apply(state, [], frozenset({name}))
    await audit.record(state.engine, actor(ctx), "provider.delete", f"provider:{name}",
                       stored[name].public(), None)
    return RedirectResponse(f"/console/admin/providers?deleted={name}", 303)


async def test_provider(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    model = str(form.get("model", "")).strip() or None
    name = ctx.request.path_params["name"]
    try:
        result = await providers_admin.run_test(ctx.state, name, model)
    except GatewayError as exc:
        return await providers_page(ctx, exc.status, error=exc.text)
    return await providers_page(ctx, tested=result)


def price_of(form: FormData, who: str) -> dict[str, Any]:
    """A catalog ``price`` entry from the form's USD boxes (empty ones left out)."""
    price: dict[str, Any] = {"currency": "USD", "source": {"note": f"set in the console by {who}"}}
    for name in PRICE_FIELDS:
        raw = str(form.get(name, "")).strip().lstrip("$")
        if raw:
            price[name] = raw
    return price


async def add_model(ctx: Ctx) -> Response:
    """A new model in the catalog (a merge import): id, family, context window, max output,
    prices, capabilities and fallbacks. An existing id is refused (reprice it instead)."""
    state = ctx.state
    form = await ctx.request.form()
    model_id = str(form.get("id", "")).strip()
    try:
        if not model_id or len(model_id) > 100 or any(c.isspace() for c in model_id):
            raise InvalidRequest(N_("A model id is 1-100 characters without spaces."),
                                 param="id")
        if model_id in state.catalog.models:
            raise InvalidRequest(N_("%(model)s already exists: set its prices instead.",
                                    model=repr(model_id)), param="id")
        price = price_of(form, ctx.user.name)
        entry: dict[str, Any] = {
            "family": str(form.get("family", "")), "price": price,
            "context_window": _int(str(form.get("context_window", "")).strip(),
                                   "context_window", 1),
            "max_output": _int(str(form.get("max_output", "")).strip(), "max_output", 1),
            "capabilities": [str(c) for c in form.getlist("capabilities")],
            "context_source": {"note": f"set in the console by {ctx.user.name}"}}
        fallbacks = [f.strip() for f in str(form.get("fallbacks", "")).split(",") if f.strip()]
        if fallbacks:
            entry["fallbacks"] = fallbacks
        await catalog_admin.import_document(state, {"models": {model_id: entry}}, True,
                                            actor(ctx), "console: new model")
    except GatewayError as exc:
        return await providers_page(ctx, exc.status, error=exc.text)
    return RedirectResponse(f"/console/admin/providers?added={model_id}", 303)


async def save_price(ctx: Ctx) -> Response:
    """Reprice one model: its entry in the catalog in force, with the new prices (USD per 1M
    tokens; an empty box removes that optional price), imported as a merge."""
    state = ctx.state
    form = await ctx.request.form()
    model_id = str(form.get("model", ""))
    try:
        _, doc = await catalog_admin.document_in_force(state)
        entry = (doc.get("models") or {}).get(model_id)
        if not isinstance(entry, dict) or ("price" not in entry and "alias_of" in entry):
            raise InvalidRequest(N_("%(model)s is not a priced model of the catalog (an alias "
                                    "takes its target's price).", model=repr(model_id)),
                                 param="model")
        price = price_of(form, ctx.user.name)
        # New prices replace the time-of-day windows (they were relative to the old ones).
        new = {**entry, "price": price}
        new.pop("price_windows", None)
        await catalog_admin.import_document(state, {"models": {model_id: new}}, True,
                                            actor(ctx), "console: model price")
    except GatewayError as exc:
        return await providers_page(ctx, exc.status, error=exc.text)
    return RedirectResponse(f"/console/admin/providers?priced={model_id}", 303)

"""``/admin/providers``: upstream providers and their routes, stored encrypted in the database.

Changes apply to this process at once (``live_providers.apply``) and reach other workers and
replicas within about a second (``live_providers.follow``). The admin credential is
``Authorization: Bearer <SMARTOKEN_MASTER_KEY>`` (compared in constant time) or an API key of
an account whose role is ``admin``. API keys are write-only: responses say ``has_api_key``,
never the key.

    GET    /admin/providers            list stored providers
    POST   /admin/providers            create one (201)
    GET    /admin/providers/{name}     read one
    PATCH  /admin/providers/{name}     change fields (api_key: null removes the key)
    DELETE /admin/providers/{name}     delete it and its routes
    GET    /admin/providers/{name}/health  its vendor keys' health (any provider, YAML too)
    POST   /admin/providers/{name}/test    a minimal real call: latency, the upstream's model
                                           list where it has one, or the exact error
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartoken.api.admin_auth import require_admin
from smartoken.api.http import JSONResponse, app_state, read_body
from smartoken.auth.secretbox import SecretBox, SecretKeyError
from smartoken.config import DIALECTS, RouteConfig, Timeouts
from smartoken.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
)
from smartoken.i18n.message import N_
from smartoken.live_providers import apply
from smartoken.protocols import wire
from smartoken.providers.base import UpstreamError
from smartoken.state import AppState
from smartoken.store import audit
from smartoken.store import providers as store
from smartoken.store.repo import Conflict

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_BODY = 256 * 1024
FIELDS = {"name", "dialect", "base_url", "api_key", "api_keys", "headers", "timeouts", "routes",
          "enabled"}
ROUTE_FIELDS = {"model", "upstream_model", "priority", "weight", "enabled"}


class ConflictError(GatewayError):
    status, type, code = 409, "invalid_request_error", "conflict"


class NotConfigured(GatewayError):
    status, type, code = 503, "server_error", "secret_key_missing"


# ------------------------------------------------------------------ credentials


def _box(state: AppState) -> SecretBox:
    try:
        return SecretBox(state.settings.secret_keys)
    except SecretKeyError as exc:
        raise NotConfigured(str(exc)) from None


# ------------------------------------------------------------------ validation


def validate_base_url(url: Any, param: str = "base_url") -> str:
    """An upstream base URL: http(s), a host, no credentials, no query or fragment."""
    if not isinstance(url, str) or not url or len(url) > 500:
        raise InvalidRequest("'base_url' must be a URL string.", param=param)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"'base_url' is not a valid URL: {exc}.", param=param) from None
    del port
    if parts.scheme not in ("http", "https"):
        raise InvalidRequest("'base_url' must use http or https.", param=param)
    if not parts.hostname:
        raise InvalidRequest("'base_url' must name a host.", param=param)
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("'base_url' must not carry credentials: set 'api_key' instead.",
                             param=param)
    if parts.query or parts.fragment:
        raise InvalidRequest("'base_url' must not have a query or a fragment.", param=param)
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidRequest("'base_url' must not contain spaces or control characters.",
                             param=param)
    return url.rstrip("/")


def _str_map(value: Any, param: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and "\n" not in k + v
            and "\r" not in k + v and "\x00" not in k + v for k, v in value.items()):
        raise InvalidRequest(f"'{param}' must be an object of string header values.",
                             param=param)
    return tuple(value.items())


def _timeouts(value: Any) -> Timeouts:
    if not isinstance(value, dict) or set(value) - {"connect", "first_byte", "idle", "total"}:
        raise InvalidRequest("'timeouts' must be an object with connect, first_byte, idle and "
                             "total (seconds).", param="timeouts")
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 3600:
            raise InvalidRequest(f"'timeouts.{k}' must be seconds in (0, 3600].",
                                 param=f"timeouts.{k}")
    return Timeouts(**{k: float(v) for k, v in value.items()})


def _routes(state: AppState, name: str, value: Any) -> tuple[RouteConfig, ...]:
    if not isinstance(value, list):
        raise InvalidRequest("'routes' must be a list.", param="routes")
    out = []
    for i, r in enumerate(value):
        p = f"routes[{i}]"
        if not isinstance(r, dict) or set(r) - ROUTE_FIELDS:
            raise InvalidRequest(f"'{p}' must be an object with {', '.join(sorted(ROUTE_FIELDS))}"
                                 ".", param=p)
        model = r.get("model")
        spec = state.catalog.get(model) if isinstance(model, str) else None
        if spec is None or spec.auto_variants or not isinstance(model, str):
            raise InvalidRequest(f"'{p}.model' must be a model of the catalog (not an auto id).",
                                 param=f"{p}.model")
        upstream = r.get("upstream_model", model)
        priority, weight = r.get("priority", 10), r.get("weight", 1)
        enabled = r.get("enabled", True)
        if not isinstance(upstream, str) or not upstream or len(upstream) > 200:
            raise InvalidRequest(f"'{p}.upstream_model' must be a string.",
                                 param=f"{p}.upstream_model")
        for field_, v, lo in (("priority", priority, 0), ("weight", weight, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= 1_000_000:
                raise InvalidRequest(f"'{p}.{field_}' must be an integer >= {lo}.",
                                     param=f"{p}.{field_}")
        if not isinstance(enabled, bool):
            raise InvalidRequest(f"'{p}.enabled' must be a boolean.", param=f"{p}.enabled")
        out.append(RouteConfig(model, name, upstream, priority, weight, enabled))
    return tuple(out)


def _key_pool(value: Any) -> tuple[tuple[str, int], ...]:
    """``api_keys``: a list (1–64) of key strings or ``{"key", "weight"}`` objects; null or []
    removes every key."""
    if value is None or value == []:
        return ()
    if not isinstance(value, list) or len(value) > 64:
        raise InvalidRequest("'api_keys' must be a list of up to 64 keys.", param="api_keys")
    out: list[tuple[str, int]] = []
    for i, item in enumerate(value):
        item = {"key": item} if isinstance(item, str) else item
        key = item.get("key") if isinstance(item, dict) else None
        weight = item.get("weight", 1) if isinstance(item, dict) else None
        if (not isinstance(item, dict) or set(item) - {"key", "weight"}
                or not isinstance(key, str) or not key.strip() or len(key) > 4096
                or any(c in key for c in "\r\n\x00") or isinstance(weight, bool)
                or not isinstance(weight, int) or not 1 <= weight <= 1000):
            raise InvalidRequest(f"'api_keys[{i}]' must be a key string or {{\"key\": string, "
                                 "\"weight\": 1-1000}.", param="api_keys")
        out.append((key.strip(), weight))
    return tuple(out)


def build(state: AppState, data: dict[str, Any], base: store.StoredProvider | None
          ) -> store.StoredProvider:
    """Validate a create (``base`` None) or patch body into a provider."""
    for extra in set(data) - FIELDS:
        raise InvalidRequest(f"Unknown field '{extra}'.", param=extra)
    if base is None:
        name = data.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise InvalidRequest(N_("'name' must be 1-64 lower-case letters, digits, '.', '_' "
                                    "or '-'."), param="name")
        if "base_url" not in data:
            raise InvalidRequest("'base_url' is required.", param="base_url")
        p = store.StoredProvider(name=name, dialect="openai", base_url="")
    else:
        if "name" in data and data["name"] != base.name:
            raise InvalidRequest("'name' cannot be changed.", param="name")
        p = base
    if "dialect" in data:
        dialect = data["dialect"]
        if not isinstance(dialect, str) or dialect not in DIALECTS or dialect == "demo":
            raise InvalidRequest(f"Unknown dialect {data['dialect']!r}.", param="dialect")
        p = replace(p, dialect=data["dialect"])
    if "base_url" in data:
        p = replace(p, base_url=validate_base_url(data["base_url"]))
        refusal = state.settings.egress.url_refusal(p.base_url)
        if refusal:
            raise InvalidRequest(f"'base_url': {refusal}.", param="base_url",
                                 code="private_address")
    if "api_key" in data:
        key = data["api_key"]
        if key is not None and (not isinstance(key, str) or not key.strip() or len(key) > 4096
                                or any(c in key for c in "\r\n\x00")):
            raise InvalidRequest("'api_key' must be a non-empty string or null.",
                                 param="api_key")
        p = replace(p, api_key=key.strip() if key else None, key_pool=())
    if "api_keys" in data:
        if "api_key" in data:
            raise InvalidRequest("Send either 'api_key' or 'api_keys'.", param="api_keys")
        pool = _key_pool(data["api_keys"])
        p = replace(p, api_key=pool[0][0] if pool else None, key_pool=pool)
    if "headers" in data:
        p = replace(p, headers=_str_map(data["headers"], "headers"))
    if "timeouts" in data:
        p = replace(p, timeouts=_timeouts(data["timeouts"]))
    if "routes" in data:
        p = replace(p, routes=_routes(state, p.name, data["routes"]))
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise InvalidRequest("'enabled' must be a boolean.", param="enabled")
        p = replace(p, enabled=data["enabled"])
    return p


# ------------------------------------------------------------------ applying


async def _stored(state: AppState, name: str) -> store.StoredProvider:
    for p in await store.list_stored(state.engine, _box(state)):
        if p.name == name:
            return p
    if name in state.settings.providers:
        raise ConflictError(f"Provider '{name}' is defined in the configuration file; change it "
                            "there.", param="name")
    raise NotFound(f"No stored provider named '{name}'.", code="provider_not_found")


# ------------------------------------------------------------------ endpoints


async def list_providers(request: Request) -> Response:
    await require_admin(request)
    state = app_state(request)
    items = [p.public() for p in await store.list_stored(state.engine, _box(state))]
    return JSONResponse({"object": "list", "data": items})


async def create_provider(request: Request) -> Response:
    identity = await require_admin(request)
    state = app_state(request)
    data = wire.parse_json(await read_body(request, MAX_BODY))
    p = build(state, data, None)
    if p.name in state.settings.providers:
        raise ConflictError(f"Provider '{p.name}' already exists.", param="name")
    try:
        await store.insert_stored(state.engine, p, _box(state))
    except Conflict as exc:
        raise ConflictError(str(exc), param="name") from None
    apply(state, [p])
    await audit.record(state.engine, identity.actor, "provider.create", f"provider:{p.name}",
                       None, p.public())
    return JSONResponse(p.public(), status_code=201)


async def get_provider(request: Request) -> Response:
    await require_admin(request)
    state = app_state(request)
    return JSONResponse((await _stored(state, request.path_params["name"])).public())


async def patch_provider(request: Request) -> Response:
    identity = await require_admin(request)
    state = app_state(request)
    base = await _stored(state, request.path_params["name"])
    data = wire.parse_json(await read_body(request, MAX_BODY))
    p = build(state, data, base)
    await store.update_stored(state.engine, p, _box(state))
    apply(state, [p])
    await audit.record(state.engine, identity.actor, "provider.update", f"provider:{p.name}",
                       base.public(), p.public())
    return JSONResponse(p.public())


async def delete_provider(request: Request) -> Response:
    identity = await require_admin(request)
    state = app_state(request)
    name = request.path_params["name"]
    before = await _stored(state, name)
    await store.delete_stored(state.engine, name)
    apply(state, [], frozenset({name}))
    await audit.record(state.engine, identity.actor, "provider.delete", f"provider:{name}",
                       before.public(), None)
    return JSONResponse({"name": name, "deleted": True})


def _live(state: AppState, name: str) -> Any:
    provider = state.providers.get(name)
    if provider is None:
        raise NotFound(N_("No provider named '%(name)s' is being served.", name=name),
                       code="provider_not_found")
    return provider


async def provider_health(request: Request) -> Response:
    await require_admin(request)
    name = request.path_params["name"]
    provider = _live(app_state(request), name)
    pool = getattr(provider, "pool", None)
    return JSONResponse({"name": name, "keys": pool.view() if pool is not None else []})


async def run_test(state: AppState, name: str, model: Any = None) -> dict[str, Any]:
    """One ``max_tokens: 1`` chat call to ``model`` (default: the upstream model of the
    provider's first route) and the upstream's model list. Not billed to any account: the
    vendor bills the operator for at most a few tokens."""
    provider = _live(state, name)
    if model is None:
        model = next((r.upstream_model for r in state.settings.routes if r.provider == name),
                     None)
    if not isinstance(model, str) or not model or len(model) > 256:
        raise InvalidRequest("'model' (the upstream model id to call) is required: this "
                             "provider has no route to take it from.", param="model")
    out: dict[str, Any] = {"name": name, "model": model}
    list_models = getattr(provider, "list_models", None)
    if list_models is not None:
        try:
            out["models"] = await list_models()
        except UpstreamError as exc:
            out["models"] = None
            out["models_error"] = exc.message
    started = time.perf_counter()
    try:
        await provider.complete({"model": model, "max_tokens": 1, "stream": False,
                                 "messages": [{"role": "user", "content": "ping"}]})
    except UpstreamError as exc:
        body = exc.body if isinstance(exc.body, dict) else None
        out.update(ok=False, error={"status": exc.status, "kind": exc.kind,
                                    "message": exc.message,
                                    "upstream": body.get("message") if body else None})
    else:
        out.update(ok=True, error=None)
    out["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return out


async def test_provider(request: Request) -> Response:
    await require_admin(request)
    raw = await read_body(request, MAX_BODY)
    data = wire.parse_json(raw) if raw.strip() else {}
    return JSONResponse(await run_test(app_state(request), request.path_params["name"],
                                       data.get("model")))


def routes() -> list[Route]:
    return [
        Route("/admin/providers", list_providers, methods=["GET"]),
        Route("/admin/providers", create_provider, methods=["POST"]),
        Route("/admin/providers/{name}", get_provider, methods=["GET"]),
        Route("/admin/providers/{name}", patch_provider, methods=["PATCH"]),
        Route("/admin/providers/{name}", delete_provider, methods=["DELETE"]),
        Route("/admin/providers/{name}/health", provider_health, methods=["GET"]),
        Route("/admin/providers/{name}/test", test_provider, methods=["POST"]),
    ]


__all__ = ["require_admin", "routes", "validate_base_url"]

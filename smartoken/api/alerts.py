"""Alert settings and history under ``/account/alerts`` (alerts/): any key of the account
reads them; changing them or rotating the webhook secret needs an unrestricted key, as key
management does (a scoped key handed to a script cannot redirect the account's alerts)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from smartoken.alerts import edit, store
from smartoken.api import admin_common as common
from smartoken.api import admin_input as inp
from smartoken.api import admin_views
from smartoken.api.admin_auth import require_account, require_key_manager
from smartoken.api.http import JSONResponse, app_state
from smartoken.auth.secretbox import SecretBox
from smartoken.errors import InvalidRequest
from smartoken.state import AppState

FIELDS = frozenset({"low_balance_threshold", "key_budget_percents", "email", "email_enabled",
                    "webhook_url"})


def _box(state: AppState) -> SecretBox | None:
    keys = state.settings.secret_keys
    return SecretBox(keys) if keys else None


async def _view(state: AppState, account_id: int) -> dict[str, Any]:
    s = await store.get_settings(state.engine, account_id)
    return edit.view(s, await store.account_email(state.engine, account_id))


async def get_alerts(request: Request) -> JSONResponse:
    key = await require_account(request)
    return JSONResponse(await _view(app_state(request), key.account_id))


def changes(state: AppState, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "low_balance_threshold" in data:
        out["low_balance_micro"] = edit.threshold(inp.opt_usd(data, "low_balance_threshold"))
    if "key_budget_percents" in data:
        value = data["key_budget_percents"]
        if not isinstance(value, list):
            raise InvalidRequest("'key_budget_percents' must be a list of percents.",
                                 param="key_budget_percents", code="invalid_type")
        out["key_percents"] = edit.percents(value)
    if "email" in data:
        value = data["email"]
        if value is not None and not isinstance(value, str):
            raise InvalidRequest("'email' must be a string or null.", param="email",
                                 code="invalid_type")
        out["email"] = edit.email(value) if value else None
    if "email_enabled" in data:
        if not isinstance(data["email_enabled"], bool):
            raise InvalidRequest("'email_enabled' must be true or false.",
                                 param="email_enabled", code="invalid_type")
        out["email_enabled"] = data["email_enabled"]
    if "webhook_url" in data:
        value = data["webhook_url"]
        if value is not None and not isinstance(value, str):
            raise InvalidRequest("'webhook_url' must be a string or null.",
                                 param="webhook_url", code="invalid_type")
        out["webhook_url"] = edit.webhook(value, state.settings.egress)
    return out


async def update_alerts(request: Request) -> JSONResponse:
    key = await require_key_manager(request)
    state = app_state(request)
    data = await common.read_json(request, FIELDS)
    done = await edit.apply(state.engine, key.account_id, changes(state, data), _box(state))
    if state.alerts is not None:  # a new threshold may be crossed already
        state.alerts.note_accounts([key.account_id])
    view = await _view(state, key.account_id)
    if done.new_secret:
        view["webhook_secret"] = done.new_secret  # shown this once
    return JSONResponse(view)


async def rotate_secret(request: Request) -> JSONResponse:
    key = await require_key_manager(request)
    state = app_state(request)
    secret = await edit.rotate(state.engine, key.account_id, _box(state))
    view = await _view(state, key.account_id)
    view["webhook_secret"] = secret  # shown this once
    return JSONResponse(view)


async def events(request: Request) -> JSONResponse:
    key = await require_account(request)
    q = request.query_params
    for name in q:
        if name not in ("limit", "offset"):
            raise InvalidRequest(f"Unknown query parameter '{name}'.", param=name,
                                 code="unknown_parameter")
    limit = inp.query_int(q, "limit", 50, 1, inp.MAX_PAGE)
    offset = inp.query_int(q, "offset", 0, 0, 10**9)
    rows = await store.history(app_state(request).engine, key.account_id, limit + 1, offset)
    return JSONResponse(admin_views.page([edit.event_view(r) for r in rows], limit, offset))


def alert_routes() -> list[Route]:
    return [
        Route("/account/alerts", get_alerts, methods=["GET"]),
        Route("/account/alerts", update_alerts, methods=["PATCH"]),
        Route("/account/alerts/webhook-secret", rotate_secret, methods=["POST"]),
        Route("/account/alerts/events", events, methods=["GET"]),
    ]

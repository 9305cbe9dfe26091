"""GET /admin/routes: every configured route with its breaker state and health.

Admin only: a key whose account is an admin, or the master key (``SMARTOKEN_MASTER_KEY``).
Route health is per process (each worker keeps its own breakers).
"""

from __future__ import annotations

import time

from starlette.requests import Request

from smartoken.api.admin_auth import require_admin
from smartoken.api.http import JSONResponse, app_state
from smartoken.state import AppState


def route_table(state: AppState) -> list[dict[str, object]]:
    now = state.router.health.clock()
    out: list[dict[str, object]] = []
    for route in state.router.all_routes():
        h = state.router.health.routes.get(route.id)
        view = h.view(now) if h is not None else {
            "state": "closed", "cooldown_remaining_s": 0.0, "success_rate": None,
            "p50_latency_ms": None, "p50_ttft_ms": None, "successes": 0, "failures": 0,
            "last_error": None}
        out.append({"id": route.id, "model": route.model, "provider": route.provider,
                    "upstream_model": route.upstream_model, "priority": route.priority,
                    "weight": route.weight, **view})
    return out


async def list_routes(request: Request) -> JSONResponse:
    await require_admin(request)
    state = app_state(request)
    return JSONResponse({"object": "list", "generated_at": int(time.time()),
                         "data": route_table(state)})

"""``GET /admin/audit``: who changed providers, routes and the catalog at run time, newest
first (``?target=provider:<name>`` or ``catalog`` narrows it; ``limit``/``offset`` page it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartoken.api.admin_auth import require_admin
from smartoken.api.admin_input import query_int
from smartoken.api.http import JSONResponse, app_state
from smartoken.errors import InvalidRequest
from smartoken.store import audit


async def list_audit(request: Request) -> Response:
    await require_admin(request)
    q = request.query_params
    target = q.get("target")
    if target is not None and (len(target) > 200 or "\x00" in target):
        raise InvalidRequest("'target' must be at most 200 characters.", param="target")
    total, rows = await audit.page(app_state(request).engine,
                                   query_int(q, "limit", 50, 1, 500),
                                   query_int(q, "offset", 0, 0, 10**9), target)
    return JSONResponse({"object": "list", "total": total, "data": rows})


def routes() -> list[Route]:
    return [Route("/admin/audit", list_audit, methods=["GET"])]

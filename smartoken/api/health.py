"""GET /healthz (the process is up) and GET /readyz (the database answers, not draining)."""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request

from smartoken.api.http import JSONResponse, app_state


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state = app_state(request)
    if not state.ready:
        return JSONResponse({"status": "draining"}, status_code=503)
    try:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "unready", "database": type(exc).__name__},
                            status_code=503)
    return JSONResponse({"status": "ready", "database": "ok"})

"""create_app(settings) -> the ASGI application. Nothing happens at import time."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Mapping

from sqlalchemy import exc as sa_errors
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from smartoken.api import codes as codes_api
from smartoken.api import files as files_api
from smartoken.api import responses as responses_api
from smartoken.api.account import account_routes
from smartoken.api.admin import admin_routes
from smartoken.api.alerts import alert_routes
from smartoken.api.chat import chat_completions
from smartoken.api.completions import completions
from smartoken.api.edge import edge
from smartoken.api.embeddings import embeddings
from smartoken.api.health import healthz, readyz
from smartoken.api.http import JSONResponse
from smartoken.api.messages import count_tokens, messages
from smartoken.api.metrics import note_refused
from smartoken.api.middleware import RequestId
from smartoken.api.models import get_model, list_models
from smartoken.api.ops import ops_routes
from smartoken.api.payments import payment_routes
from smartoken.api.routes_admin import list_routes
from smartoken.api.signup import signup_routes
from smartoken.api.signup_admin import signup_admin_routes
from smartoken.config import Settings
from smartoken.console.http import open_console
from smartoken.console.routes import console_routes
from smartoken.errors import DatabaseUnavailable, GatewayError, InvalidRequest, NotFound
from smartoken.i18n import locales
from smartoken.i18n.errors import localize
from smartoken.ledger.writer import database_failed
from smartoken.logs import configure_logging, secrets_of
from smartoken.payments.service import open_payments
from smartoken.signup.service import Signup
from smartoken.state import app_state

log = logging.getLogger("smartoken")


def _language(request: Request) -> tuple[str | None, str | None]:
    """What an error's language is chosen from: the client's Accept-Language, and the language
    a console user picked (its cookie: the console's JSON endpoints answer in it too)."""
    return request.headers.get("accept-language"), request.cookies.get(locales.COOKIE)


def _error_response(err: GatewayError) -> Response:
    return Response(err.body(), status_code=err.status, headers=err.headers,
                    media_type="application/json")


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    note_refused(request, exc)
    exc = localize(exc, *_language(request))
    protocol = request.scope.get("state", {}).get("protocol")
    if protocol is not None:  # shaped as the client's protocol has it (protocols/)
        return Response(protocol.error_body(exc), status_code=exc.status,
                        headers=exc.headers, media_type="application/json")
    return _error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err: GatewayError = NotFound(f"Unknown path: {request.url.path}", code="not_found")
    else:
        err = InvalidRequest(str(exc.detail), code=f"http_{exc.status_code}")
        err.status = exc.status_code
    note_refused(request, err)
    return _error_response(localize(err, *_language(request)))


def _database_down(exc: Exception) -> bool:
    """A database that did not answer (the ledger's test, plus a pool timeout), as opposed to
    one that refused the statement (a constraint, a bug: those stay 500)."""
    return database_failed(exc) or isinstance(exc, sa_errors.TimeoutError)


async def _unexpected(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get("state", {}).get("request_id")
    if _database_down(exc):
        log.warning("database unavailable: %s", type(exc).__name__,
                    extra={"request_id": request_id})
        down = DatabaseUnavailable("The database did not answer in time; retry shortly. "
                                   "The request was not billed.")
        return _error_response(localize(down, *_language(request)))
    log.exception("unhandled error", extra={"request_id": request_id})
    err = GatewayError("The gateway hit an internal error; the request was not billed.",
                       code="internal_error")
    return _error_response(localize(err, *_language(request)))


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/responses", responses_api.create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", responses_api.get_response, methods=["GET"]),
        Route("/v1/responses/{response_id}", responses_api.delete_response,
              methods=["DELETE"]),
        Route("/v1/responses/{response_id}/input_items", responses_api.list_input_items,
              methods=["GET"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *files_api.routes(),
        *admin_routes(),
        *signup_routes(),
        *signup_admin_routes(),
        *account_routes(),
        *codes_api.routes(),
        *alert_routes(),
        *console_routes(),
        *ops_routes(),
        *payment_routes(),
        Route("/admin/routes", list_routes, methods=["GET"]),
    ]


GC_YOUNG = 10_000  # allocations between young collections (Python's default: 700)


def create_app(settings: Settings, *, run_migrations: bool = True,
               env: Mapping[str, str] | None = None, freeze_heap: bool = False) -> RequestId:
    """The gateway as an ASGI app. The request-id layer is outermost, so that even a response
    rendered for an unexpected error carries ``x-request-id``. ``freeze_heap`` (the serving
    process, never a test process hosting many apps): once started, everything built so far
    is moved out of the garbage collector's sight (``gc.freeze``): those ~120,000 objects
    (modules, settings, the database and HTTP machinery) live as long as the process, and
    every full collection used to walk them all, a pause of tens of milliseconds in the middle
    of requests."""
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with app_state(settings, run_migrations=run_migrations, env=env) as state, \
                open_payments(settings.payments) as payments:
            app.state.smartoken = state
            app.state.payments = payments
            app.state.console = await open_console(state)
            app.state.signup = await Signup.open(state)
            if freeze_heap:
                gc.collect()
                gc.freeze()
                gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
            try:
                yield
            finally:
                await app.state.signup.close()  # mails being handed to the server

    app = Starlette(
        routes=routes(),
        exception_handlers={
            GatewayError: _gateway_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    return RequestId(edge(app, settings))


def app_from_env() -> RequestId:
    """Factory for ``uvicorn --factory`` (several workers): settings come from the environment
    that ``smartoken serve`` exported."""
    import os
    from pathlib import Path

    from smartoken.config import load_settings

    cfg = os.environ.get("SMARTOKEN_CONFIG")
    settings = load_settings(Path(cfg) if cfg else None,
                             data_dir=os.environ.get("SMARTOKEN_DATA_DIR"),
                             workers=int(os.environ.get("SMARTOKEN_WORKERS", "2")))
    configure_logging(settings.log_level, secrets_of(settings))
    return create_app(settings, run_migrations=False, freeze_heap=True)


__all__ = ["JSONResponse", "create_app"]

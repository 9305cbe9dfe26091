"""``/admin/catalog``: the model catalog in force, exported and imported at run time.

    GET /admin/catalog          the catalog document in force (the built-in one with the
                                latest import laid over it), as JSON; ``?format=yaml`` as YAML
    PUT /admin/catalog          import a document (JSON body): it replaces the previous import,
                                or is laid over it with ``?merge=true``

An import is checked whole (every key, and against the configuration file's ``models:``
entries and routes) before it is stored; it applies to this process at once and reaches the
other workers and replicas within a second. Requests already running keep the price they
started with.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartoken.api.admin_auth import require_admin
from smartoken.api.http import JSONResponse, app_state, read_body
from smartoken.catalog.document import CatalogError, overlay
from smartoken.config import ConfigError, catalog_document
from smartoken.errors import InvalidRequest
from smartoken.live_providers import apply_catalog, catalog_base
from smartoken.protocols import wire
from smartoken.state import AppState
from smartoken.store import audit, catalog_docs

MAX_BODY = 2 * 1024 * 1024


async def document_in_force(state: AppState) -> tuple[int, dict[str, Any]]:
    assert state.config is not None
    doc_id, doc = await catalog_docs.latest(state.engine)
    return doc_id, catalog_document(state.config, doc)


async def export_catalog(request: Request) -> Response:
    await require_admin(request)
    state = app_state(request)
    doc_id, doc = await document_in_force(state)
    headers = {"x-catalog-version": str(doc_id)}
    if request.query_params.get("format") == "yaml":
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        return Response(text, media_type="application/yaml", headers=headers)
    body = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, media_type="application/json", headers=headers)


async def import_document(state: AppState, doc: Any, merge: bool, actor: str,
                          note: str = "PUT /admin/catalog") -> dict[str, Any]:
    """Check ``doc`` whole, store it (laid over the previous import when ``merge``), serve it
    here now and announce it to the other processes; audited. Raises ``InvalidRequest``."""
    assert state.config is not None
    sent = doc
    old_id, current = await catalog_docs.latest(state.engine)
    try:
        if merge:
            doc = overlay(current or {}, doc, keep_nulls=True)
        catalog = catalog_base(state.config, doc, 0).catalog
    except (ConfigError, CatalogError) as exc:
        raise InvalidRequest(f"The catalog was not imported: {exc.key}: {exc.problem}",
                             param=exc.key, code="invalid_catalog") from None
    doc_id = await catalog_docs.save(state.engine, doc, actor, note)
    await apply_catalog(state, doc, doc_id)
    await audit.record(state.engine, actor, "catalog.import", "catalog",
                       {"version": old_id}, {"version": doc_id, "merge": merge, "sent": sent})
    if state.cluster is not None:
        await state.cluster.announce("catalog")
    return {"object": "catalog.import", "version": doc_id, "models": len(catalog.models),
            "families": len(catalog.families)}


async def import_catalog(request: Request) -> Response:
    identity = await require_admin(request)
    doc = wire.parse_json(await read_body(request, MAX_BODY))
    merge = request.query_params.get("merge") in ("1", "true")
    return JSONResponse(await import_document(app_state(request), doc, merge, identity.actor))


def routes() -> list[Route]:
    return [
        Route("/admin/catalog", export_catalog, methods=["GET"]),
        Route("/admin/catalog", import_catalog, methods=["PUT"]),
    ]

"""The operations surface: metrics, the OpenAPI document, stored providers, the catalog,
the audit log."""

from __future__ import annotations

from starlette.routing import Route

from smartoken.api import audit_admin, catalog_admin, providers_admin
from smartoken.api.metrics import metrics
from smartoken.api.openapi import openapi_json


def ops_routes() -> list[Route]:
    return [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        *providers_admin.routes(),
        *catalog_admin.routes(),
        *audit_admin.routes(),
    ]

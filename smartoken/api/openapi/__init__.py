"""GET /openapi.json: the gateway's OpenAPI 3.1 document, written by hand beside the routes.

``schemas``/``schemas_admin`` hold the components, ``paths_v1``/``paths_admin`` the
operations, ``common`` the shared pieces. ``tests/integration/test_edge.py`` checks that the
document validates, that every route but the console is documented, and that every
documented operation answers with a documented status.
"""

from __future__ import annotations

from starlette.requests import Request

from smartoken.api.http import JSONResponse
from smartoken.api.openapi.common import JSON, SECURITY_SCHEMES
from smartoken.api.openapi.paths_admin import account_paths, admin_paths
from smartoken.api.openapi.paths_alerts import ALERT_SCHEMAS, alert_paths
from smartoken.api.openapi.paths_billing import BILLING_SCHEMAS, billing_paths
from smartoken.api.openapi.paths_messages import MESSAGES_SCHEMAS, messages_paths
from smartoken.api.openapi.paths_protocols import RESPONSES_SCHEMAS, protocol_paths
from smartoken.api.openapi.paths_signup import SIGNUP_SCHEMAS, signup_paths
from smartoken.api.openapi.paths_v1 import files_paths, public_paths, relay_paths
from smartoken.api.openapi.schemas import SCHEMAS
from smartoken.api.openapi.schemas_admin import ADMIN_SCHEMAS


def document() -> JSON:
    return {
        "openapi": "3.1.0",
        "info": {"title": "SmarToken", "version": "0.1.0",
                 "description": "OpenAI-compatible gateway: /v1 for applications, /account "
                                "for a key's own account, /admin for operators. Every "
                                "response carries x-request-id; every error is an OpenAI "
                                "error object (Anthropic's on /v1/messages)."},
        "paths": {**relay_paths(), **protocol_paths(), **messages_paths(), **files_paths(),
                  **account_paths(), **admin_paths(), **billing_paths(),
                  **signup_paths(), **alert_paths(),
                  **public_paths()},
        "components": {"schemas": {**SCHEMAS, **RESPONSES_SCHEMAS, **MESSAGES_SCHEMAS,
                                   **ADMIN_SCHEMAS, **BILLING_SCHEMAS,
                                   **SIGNUP_SCHEMAS, **ALERT_SCHEMAS},
                       "securitySchemes": SECURITY_SCHEMES},
    }


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(document())


__all__ = ["document", "openapi_json"]

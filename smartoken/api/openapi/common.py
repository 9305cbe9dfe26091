"""Building blocks of the OpenAPI document: references, responses, parameters, security.

Every operation documents every status it can answer. Three come from outside the handlers:
431 (the edge refuses oversized request lines and headers, on every path), 429 (an address
over the failed-authentication limit is refused before routing, on every path but the
probes) and 500 (an unexpected error, rendered as an OpenAI error body).
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

KEY: list[JSON] = [{"apiKey": []}]
ADMIN: list[JSON] = [{"adminKey": []}]
PUBLIC: list[JSON] = []

ERROR_TEXT = {
    400: "Invalid request: a bad body, field, parameter or query",
    401: "Missing or bad credential",
    402: "Wallet cannot cover the request",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    429: "Budget exhausted, rate limited, or too many failed authentications from this "
         "address (Retry-After)",
    431: "Request line and headers too large",
    500: "Internal error",
    502: "Every route failed",
    503: "Unavailable",
    504: "Upstream timed out",
}
EDGE = (429, 431, 500)  # every route but the probes
PROBE_EDGE = (431, 500)


def ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: JSON, description: str = "OK") -> JSON:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*codes: int) -> JSON:
    return {str(c): json_body(ref("Error"), ERROR_TEXT[c]) for c in sorted(set(codes))}


def request_body(name: str) -> JSON:
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


def path_param(name: str, schema: JSON, description: str = "") -> JSON:
    out: JSON = {"name": name, "in": "path", "required": True, "schema": schema}
    if description:
        out["description"] = description
    return out


def query_param(name: str, schema: JSON, description: str) -> JSON:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def op(operation_id: str, security: list[JSON], ok: JSON, codes: tuple[int, ...], *,
       status: int = 200, summary: str = "", body: str | None = None,
       params: list[JSON] | None = None, probe: bool = False) -> JSON:
    """One operation: its success response ``ok`` under ``status``, plus the error statuses
    ``codes`` and the edge's (401 added for every authenticated operation)."""
    edge = PROBE_EDGE if probe else EDGE
    auth = (401,) if security else ()
    out: JSON = {"operationId": operation_id, "security": security}
    if summary:
        out["summary"] = summary
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = request_body(body)
    out["responses"] = {str(status): ok, **errors(*codes, *auth, *edge)}
    return out


SECURITY_SCHEMES: JSON = {
    "apiKey": {"type": "http", "scheme": "bearer",
               "description": "A SmarToken API key (sk-st-...)"},
    "adminKey": {"type": "http", "scheme": "bearer",
                 "description": "SMARTOKEN_MASTER_KEY, or an API key of an admin account"},
}

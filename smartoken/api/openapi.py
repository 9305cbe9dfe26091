"""GET /openapi.json: the gateway's OpenAPI 3.1 document, written by hand beside the routes.

The schemas describe what ``api/wire.py`` accepts (unknown fields pass through to the
upstream, so request objects allow additional properties). ``tests/integration/
test_openapi.py`` checks that every documented path answers and every route is documented.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from smartoken.api.http import JSONResponse

JSON = dict[str, Any]


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: JSON, description: str = "OK") -> JSON:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> JSON:
    text = {400: "Invalid request", 401: "Missing or bad credential",
            402: "Wallet cannot cover the request", 403: "Not allowed", 404: "Not found",
            409: "Conflict", 413: "Body too large", 429: "Budget exhausted or rate limited",
            431: "Request headers too large", 502: "Every route failed",
            503: "Unavailable", 504: "Upstream timed out"}
    return {str(c): _json(_ref("Error"), text[c]) for c in codes}


INT1 = {"type": "integer", "minimum": 1}
MESSAGE: JSON = {
    "type": "object", "required": ["role"], "additionalProperties": True,
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool", "function"]},
        "content": {"oneOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": {
            "type": "object", "required": ["type"], "properties": {"type": {"type": "string"}},
            "additionalProperties": True}}]},
        "name": {"type": "string"}, "tool_call_id": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
    },
}
CHAT_REQUEST: JSON = {
    "type": "object", "required": ["model", "messages"], "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {"type": "array", "minItems": 1, "items": MESSAGE},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {
            "include_usage": {"type": "boolean"}}},
        "max_tokens": INT1, "max_completion_tokens": INT1,
        "n": {"type": "integer", "minimum": 1, "maximum": 128},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "tools": {"type": "array", "items": {
            "type": "object", "required": ["function"], "properties": {
                "type": {"const": "function"},
                "function": {"type": "object", "required": ["name"],
                             "properties": {"name": {"type": "string"}}}}}},
        "tool_choice": {"oneOf": [{"type": "string"}, {"type": "object"}]},
        "response_format": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["text", "json_object", "json_schema"]}}},
        "user": {"type": "string"},
    },
}
EMBEDDINGS_REQUEST: JSON = {
    "type": "object", "required": ["model", "input"], "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {"oneOf": [
            {"type": "string"},
            {"type": "array", "minItems": 1, "items": {"oneOf": [
                {"type": "string"}, {"type": "integer"},
                {"type": "array", "items": {"type": "integer"}}]}}]},
    },
}
ROUTE: JSON = {
    "type": "object", "required": ["model"], "additionalProperties": False,
    "properties": {"model": {"type": "string"}, "upstream_model": {"type": "string"},
                   "priority": {"type": "integer", "minimum": 0, "default": 10},
                   "weight": {"type": "integer", "minimum": 1, "default": 1},
                   "enabled": {"type": "boolean", "default": True}},
}
PROVIDER_FIELDS: JSON = {
    "dialect": {"type": "string", "default": "openai"},
    "base_url": {"type": "string", "format": "uri",
                 "description": "http(s), a host, no credentials, no query"},
    "api_key": {"type": ["string", "null"], "writeOnly": True},
    "headers": {"type": "object", "additionalProperties": {"type": "string"},
                "writeOnly": True},
    "timeouts": {"type": "object", "additionalProperties": False, "properties": {
        k: {"type": "number", "exclusiveMinimum": 0, "maximum": 3600}
        for k in ("connect", "first_byte", "idle", "total")}},
    "routes": {"type": "array", "items": ROUTE},
    "enabled": {"type": "boolean"},
}
NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"}
SCHEMAS: JSON = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["message", "type"], "properties": {
            "message": {"type": "string"}, "type": {"type": "string"},
            "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}},
    "ChatCompletionRequest": CHAT_REQUEST,
    "ChatCompletion": {"type": "object", "required": ["id", "object", "choices", "model"],
                       "properties": {"object": {"const": "chat.completion"}}},
    "EmbeddingsRequest": EMBEDDINGS_REQUEST,
    "Embeddings": {"type": "object", "required": ["object", "data"],
                   "properties": {"object": {"const": "list"}}},
    "Model": {"type": "object", "required": ["id", "object"],
              "properties": {"id": {"type": "string"}, "object": {"const": "model"}}},
    "ModelList": {"type": "object", "required": ["object", "data"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": _ref("Model")}}},
    "ProviderCreate": {"type": "object", "required": ["name", "base_url"],
                       "additionalProperties": False,
                       "properties": {"name": NAME, **PROVIDER_FIELDS}},
    "ProviderPatch": {"type": "object", "additionalProperties": False,
                      "properties": {"name": NAME, **PROVIDER_FIELDS}},
    "Provider": {"type": "object", "required": ["name", "dialect", "base_url", "has_api_key",
                                                "routes", "enabled"],
                 "properties": {"name": NAME, "dialect": {"type": "string"},
                                "base_url": {"type": "string"},
                                "has_api_key": {"type": "boolean"},
                                "header_names": {"type": "array", "items": {"type": "string"}},
                                "timeouts": PROVIDER_FIELDS["timeouts"],
                                "routes": {"type": "array", "items": ROUTE},
                                "enabled": {"type": "boolean"}}},
    "ProviderList": {"type": "object", "required": ["object", "data"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": _ref("Provider")}}},
    "Status": {"type": "object", "required": ["status"],
               "properties": {"status": {"type": "string"}}},
}
KEY: list[JSON] = [{"apiKey": []}]
ADMIN: list[JSON] = [{"adminKey": []}]
NAME_PARAM = [{"name": "name", "in": "path", "required": True, "schema": NAME}]


def document() -> JSON:
    v1_errors = _errors(400, 401, 402, 403, 404, 413, 429, 431, 502, 503, 504)
    admin_errors = _errors(400, 401, 403, 404, 409, 413, 429, 503)
    return {
        "openapi": "3.1.0",
        "info": {"title": "SmarToken", "version": "0.1.0",
                 "description": "OpenAI-compatible gateway: /v1 for applications, /admin for "
                                "operators. Every response carries x-request-id."},
        "paths": {
            "/v1/chat/completions": {"post": {
                "operationId": "createChatCompletion", "security": KEY,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("ChatCompletionRequest")}}},
                "responses": {"200": {"description": "A chat.completion, or an SSE stream of "
                                                     "chat.completion.chunk when stream is true",
                                      "content": {"application/json": {
                                          "schema": _ref("ChatCompletion")},
                                          "text/event-stream": {"schema": {"type": "string"}}}},
                              **v1_errors}}},
            "/v1/embeddings": {"post": {
                "operationId": "createEmbedding", "security": KEY,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("EmbeddingsRequest")}}},
                "responses": {"200": _json(_ref("Embeddings")), **v1_errors}}},
            "/v1/models": {"get": {
                "operationId": "listModels", "security": KEY,
                "responses": {"200": _json(_ref("ModelList")), **_errors(401)}}},
            "/v1/models/{model}": {"get": {
                "operationId": "retrieveModel", "security": KEY,
                "parameters": [{"name": "model", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": _json(_ref("Model")), **_errors(401, 404)}}},
            "/admin/providers": {
                "get": {"operationId": "listProviders", "security": ADMIN,
                        "responses": {"200": _json(_ref("ProviderList")), **admin_errors}},
                "post": {"operationId": "createProvider", "security": ADMIN,
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": _ref("ProviderCreate")}}},
                         "responses": {"201": _json(_ref("Provider"), "Created"),
                                       **admin_errors}}},
            "/admin/providers/{name}": {
                "get": {"operationId": "getProvider", "security": ADMIN,
                        "parameters": NAME_PARAM,
                        "responses": {"200": _json(_ref("Provider")), **admin_errors}},
                "patch": {"operationId": "updateProvider", "security": ADMIN,
                          "parameters": NAME_PARAM,
                          "requestBody": {"required": True, "content": {"application/json": {
                              "schema": _ref("ProviderPatch")}}},
                          "responses": {"200": _json(_ref("Provider")), **admin_errors}},
                "delete": {"operationId": "deleteProvider", "security": ADMIN,
                           "parameters": NAME_PARAM,
                           "responses": {"200": _json({"type": "object"}), **admin_errors}}},
            "/healthz": {"get": {"operationId": "healthz", "security": [],
                                 "responses": {"200": _json(_ref("Status"))}}},
            "/readyz": {"get": {"operationId": "readyz", "security": [],
                                "responses": {"200": _json(_ref("Status")),
                                              "503": _json(_ref("Status"), "Not ready")}}},
            "/metrics": {"get": {"operationId": "metrics", "security": [], "responses": {
                "200": {"description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"operationId": "openapi", "security": [],
                                      "responses": {"200": _json({"type": "object"})}}},
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer",
                           "description": "A SmarToken API key (sk-st-...)"},
                "adminKey": {"type": "http", "scheme": "bearer",
                             "description": "SMARTOKEN_MASTER_KEY, or an API key of an admin "
                                            "account"},
            },
        },
    }


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(document())

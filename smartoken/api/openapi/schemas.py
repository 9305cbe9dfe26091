"""Schemas of the /v1 relay endpoints, the Files API and the stored providers.

They describe what ``protocols/wire.py`` accepts (unknown fields pass through to the upstream, so
relay request objects allow additional properties), what ``files/`` answers, and what
``api/providers_admin.py`` validates.
"""

from __future__ import annotations

from smartoken.api.openapi.common import JSON, ref
from smartoken.files.service import PURPOSES

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
    "api_keys": {"type": ["array", "null"], "writeOnly": True, "maxItems": 64,
                 "description": "A key pool (instead of api_key): keys drawn by weighted "
                 "round-robin, each cooling down alone when the vendor refuses it",
                 "items": {"oneOf": [{"type": "string"}, {
                     "type": "object", "required": ["key"], "additionalProperties": False,
                     "properties": {"key": {"type": "string"},
                                    "weight": {"type": "integer", "minimum": 1,
                                               "maximum": 1000}}}]}},
    "headers": {"type": "object", "additionalProperties": {"type": "string"},
                "writeOnly": True},
    "timeouts": {"type": "object", "additionalProperties": False, "properties": {
        k: {"type": "number", "exclusiveMinimum": 0, "maximum": 3600}
        for k in ("connect", "first_byte", "idle", "total")}},
    "routes": {"type": "array", "items": ROUTE},
    "enabled": {"type": "boolean"},
}
FILE: JSON = {
    "type": "object", "required": ["id", "object", "bytes", "created_at", "filename", "purpose",
                                   "status"],
    "properties": {
        "id": {"type": "string"}, "object": {"const": "file"}, "bytes": {"type": "integer"},
        "created_at": {"type": "integer", "description": "Unix seconds"},
        "expires_at": {"type": "null"}, "filename": {"type": "string"},
        "purpose": {"enum": list(PURPOSES)}, "status": {"const": "processed"},
        "status_details": {"type": "null"}, "media_type": {"type": "string"},
        "text_chars": {"type": ["integer", "null"],
                       "description": "Characters of extracted text; null when none"}},
}
FILE_SCHEMAS: JSON = {
    "File": FILE,
    "FileUpload": {"type": "object", "required": ["file", "purpose"], "properties": {
        "file": {"type": "string", "contentMediaType": "application/octet-stream",
                 "description": "The file, with its file name"},
        "purpose": {"enum": list(PURPOSES)}}},
    "FileList": {"type": "object", "required": ["object", "data", "has_more"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": ref("File")},
        "first_id": {"type": ["string", "null"]}, "last_id": {"type": ["string", "null"]},
        "has_more": {"type": "boolean"}}},
    "FileDeleted": {"type": "object", "required": ["id", "object", "deleted"], "properties": {
        "id": {"type": "string"}, "object": {"const": "file"}, "deleted": {"const": True}}},
    "FileText": {"type": "object", "required": ["content", "type"],
                 "description": "The extracted text of a file-extract file (Moonshot's shape)",
                 "properties": {"content": {"type": "string"},
                                "file_type": {"type": "string"},
                                "filename": {"type": "string"}, "title": {"type": "string"},
                                "type": {"const": "file"}}},
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
        "object": {"const": "list"}, "data": {"type": "array", "items": ref("Model")}}},
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
                                "key_count": {"type": "integer"},
                                "key_weights": {"type": "array",
                                                "items": {"type": "integer"}},
                                "header_names": {"type": "array", "items": {"type": "string"}},
                                "timeouts": PROVIDER_FIELDS["timeouts"],
                                "routes": {"type": "array", "items": ROUTE},
                                "enabled": {"type": "boolean"}}},
    "ProviderList": {"type": "object", "required": ["object", "data"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": ref("Provider")}}},
    "Status": {"type": "object", "required": ["status"],
               "properties": {"status": {"type": "string"}}},
    "ProviderHealth": {"type": "object", "required": ["name", "keys"], "properties": {
        "name": NAME, "keys": {"type": "array", "items": {
            "type": "object", "required": ["key", "state"], "properties": {
                "key": {"type": "string", "description": "position and last 4 characters"},
                "weight": {"type": "integer"}, "requests": {"type": "integer"},
                "failures": {"type": "integer"}, "state": {"enum": ["ok", "cooling"]},
                "cooling_for_s": {"type": "number"},
                "last_error": {"type": ["string", "null"]},
                "last_error_kind": {"type": ["string", "null"]}}}}}},
    "ProviderTestRequest": {"type": "object", "additionalProperties": True, "properties": {
        "model": {"type": "string", "description": "upstream model id; default: the "
                  "provider's first route's"}}},
    "ProviderTestResult": {"type": "object", "required": ["name", "model", "ok", "latency_ms"],
                           "properties": {
                               "name": NAME, "model": {"type": "string"},
                               "ok": {"type": "boolean"}, "latency_ms": {"type": "number"},
                               "models": {"type": ["array", "null"],
                                          "items": {"type": "string"}},
                               "models_error": {"type": "string"},
                               "error": {"type": ["object", "null"]}}},
    "AuditList": {"type": "object", "required": ["object", "total", "data"], "properties": {
        "object": {"const": "list"}, "total": {"type": "integer"},
        "data": {"type": "array", "items": {
            "type": "object", "required": ["id", "at", "actor", "action", "target"],
            "properties": {"id": {"type": "integer"}, "at": {"type": "string"},
                           "actor": {"type": "string"}, "action": {"type": "string"},
                           "target": {"type": "string"}, "before": {}, "after": {}}}}}},
    "ProviderDeleted": {"type": "object", "required": ["name", "deleted"], "properties": {
        "name": NAME, "deleted": {"const": True}}},
    **FILE_SCHEMAS,
}

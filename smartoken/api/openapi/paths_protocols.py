"""Paths and schemas of the OpenAI Responses API (/v1/responses) and legacy Completions
(/v1/completions): see docs/protocols.md for what is translated."""

from __future__ import annotations

from smartoken.api.openapi.common import JSON, KEY, json_body, op, path_param, ref

RELAY_ERRORS = (400, 402, 403, 404, 413, 429, 502, 503, 504)
RESPONSE_ID = [path_param("response_id", {"type": "string"}, "A response id (resp_...)")]

RESPONSES_SCHEMAS: JSON = {
    "ResponseRequest": {
        "type": "object", "required": ["model"], "additionalProperties": True,
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": {
                "type": "object", "additionalProperties": True}}]},
            "instructions": {"type": "string"},
            "previous_response_id": {"type": "string"},
            "store": {"type": "boolean"}, "stream": {"type": "boolean"},
            "tools": {"type": "array", "items": {"type": "object", "required": ["type"]}},
            "tool_choice": {"oneOf": [{"type": "string"}, {"type": "object"}]},
            "parallel_tool_calls": {"type": "boolean"},
            "reasoning": {"type": "object", "properties": {
                "effort": {"type": "string"}, "summary": {"type": ["string", "null"]}}},
            "text": {"type": "object", "properties": {"format": {"type": "object"}}},
            "max_output_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number"}, "top_p": {"type": "number"},
            "include": {"type": "array", "items": {"type": "string"}},
            "prompt_cache_key": {"type": "string"},
        }},
    "Response": {"type": "object", "required": ["id", "object", "status", "output", "model"],
                 "properties": {"object": {"const": "response"},
                                "status": {"enum": ["completed", "incomplete", "failed",
                                                    "in_progress"]},
                                "output": {"type": "array", "items": {"type": "object"}}}},
    "ResponseDeleted": {"type": "object", "required": ["id", "object", "deleted"],
                        "properties": {"object": {"const": "response"},
                                       "deleted": {"const": True}}},
    "ResponseItemList": {"type": "object", "required": ["object", "data", "has_more"],
                         "properties": {"object": {"const": "list"},
                                        "data": {"type": "array", "items": {"type": "object"}},
                                        "has_more": {"type": "boolean"}}},
    "CompletionRequest": {
        "type": "object", "required": ["model", "prompt"], "additionalProperties": True,
        "properties": {"model": {"type": "string", "minLength": 1},
                       "prompt": {"oneOf": [{"type": "string"}, {
                           "type": "array", "minItems": 1, "maxItems": 1,
                           "items": {"type": "string"}}]},
                       "suffix": {"type": "string"}, "stream": {"type": "boolean"},
                       "max_tokens": {"type": "integer", "minimum": 1},
                       "echo": {"type": "boolean"}}},
    "Completion": {"type": "object", "required": ["id", "object", "choices", "model"],
                   "properties": {"object": {"const": "text_completion"}}},
}


def protocol_paths() -> JSON:
    response_ok = {"description": "A response object, or an SSE stream of typed response "
                                  "events (event: response.created … response.completed) "
                                  "when stream is true",
                   "content": {"application/json": {"schema": ref("Response")},
                               "text/event-stream": {"schema": {"type": "string"}}}}
    completion_ok = {"description": "A text_completion, or an SSE stream of text_completion "
                                    "chunks when stream is true",
                     "content": {"application/json": {"schema": ref("Completion")},
                                 "text/event-stream": {"schema": {"type": "string"}}}}
    return {
        "/v1/responses": {"post": op("createResponse", KEY, response_ok, RELAY_ERRORS,
                                     body="ResponseRequest")},
        "/v1/responses/{response_id}": {
            "get": op("retrieveResponse", KEY, json_body(ref("Response")), (404,),
                      params=RESPONSE_ID, summary="A stored response of this account"),
            "delete": op("deleteResponse", KEY, json_body(ref("ResponseDeleted")), (404,),
                         params=RESPONSE_ID),
        },
        "/v1/responses/{response_id}/input_items": {"get": op(
            "listResponseInputItems", KEY, json_body(ref("ResponseItemList")), (404,),
            params=RESPONSE_ID, summary="The conversation items before a stored response")},
        "/v1/completions": {"post": op("createCompletion", KEY, completion_ok, RELAY_ERRORS,
                                       body="CompletionRequest",
                                       summary="Legacy completions: a prompt in, text out")},
    }

"""Paths and schemas of Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens):
see docs/protocols.md for what is passed through or translated. Its errors are Anthropic's
shape, not OpenAI's."""

from __future__ import annotations

from smartoken.api.openapi.common import JSON, KEY, json_body, op, ref

MESSAGES_ERRORS = (400, 402, 403, 404, 413, 429, 502, 503, 504)
BLOCKS = {"type": "array", "items": {"type": "object", "required": ["type"],
                                     "additionalProperties": True}}

MESSAGES_SCHEMAS: JSON = {
    "MessageRequest": {
        "type": "object", "required": ["model", "messages", "max_tokens"],
        "additionalProperties": True,
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "max_tokens": {"type": "integer", "minimum": 1,
                           "description": "Lowered to the model's maximum output when above"},
            "messages": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["role", "content"], "properties": {
                    "role": {"enum": ["user", "assistant", "system"]},
                    "content": {"oneOf": [{"type": "string"}, BLOCKS]}}}},
            "system": {"oneOf": [{"type": "string"}, BLOCKS]},
            "tools": {"type": "array", "items": {"type": "object"}},
            "tool_choice": {"type": "object", "required": ["type"]},
            "thinking": {"type": "object", "required": ["type"]},
            "stop_sequences": {"type": "array", "items": {"type": "string"}},
            "stream": {"type": "boolean"}, "temperature": {"type": "number"},
            "top_p": {"type": "number"}, "metadata": {"type": "object"},
        }},
    "CountTokensRequest": {"type": "object", "required": ["model", "messages"],
                           "additionalProperties": True,
                           "properties": {"model": {"type": "string", "minLength": 1},
                                          "messages": {"type": "array", "minItems": 1}}},
    "Message": {"type": "object",
                "required": ["id", "type", "role", "content", "model", "stop_reason", "usage"],
                "properties": {"type": {"const": "message"}, "role": {"const": "assistant"},
                               "content": BLOCKS, "stop_reason": {"type": ["string", "null"]},
                               "usage": {"type": "object"}}},
    "TokenCount": {"type": "object", "required": ["input_tokens"],
                   "properties": {"input_tokens": {"type": "integer", "minimum": 0}}},
    "AnthropicError": {"type": "object", "required": ["type", "error"], "properties": {
        "type": {"const": "error"},
        "error": {"type": "object", "required": ["type", "message"], "properties": {
            "type": {"type": "string"}, "message": {"type": "string"}}}}},
}


def _anthropic_errors(operation: JSON) -> JSON:
    for status, resp in operation["responses"].items():
        if status != "200":
            resp["content"] = {"application/json": {"schema": ref("AnthropicError")}}
    return operation


def messages_paths() -> JSON:
    message_ok = {"description": "A message, or an SSE stream of Anthropic's events "
                                 "(message_start … message_stop) when stream is true",
                  "content": {"application/json": {"schema": ref("Message")},
                              "text/event-stream": {"schema": {"type": "string"}}}}
    return {
        "/v1/messages": {"post": _anthropic_errors(op(
            "createMessage", KEY, message_ok, MESSAGES_ERRORS, body="MessageRequest",
            summary="Anthropic Messages API (x-api-key or Bearer)"))},
        "/v1/messages/count_tokens": {"post": _anthropic_errors(op(
            "countMessageTokens", KEY, json_body(ref("TokenCount")), (400, 403, 404, 413),
            body="CountTokensRequest", summary="The prompt's tokens as the gateway counts "
                                               "them; free"))},
    }

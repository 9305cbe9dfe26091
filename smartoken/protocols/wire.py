"""Validation of client requests. Every problem is an ``InvalidRequest`` naming the field.

Requests stay dicts after validation: unknown fields pass through to OpenAI-compatible
upstreams untouched, as the SDKs' ``extra_body`` expects.
"""

from __future__ import annotations

from typing import Any

import orjson

from smartoken.errors import InvalidRequest

JSON = dict[str, Any]
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
FORMATS = frozenset({"text", "json_object", "json_schema"})


def parse_json(body: bytes | bytearray) -> JSON:
    if not body:
        raise InvalidRequest("The request body is empty: send a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return data


# OpenAI's largest embedding has 3,072 dimensions; a request for more than this is refused
# here rather than sent on (and the demo provider would build a vector that long per input).
MAX_DIMENSIONS = 16_384


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _type_error(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, got {type(value).__name__}.",
        param=param, code="invalid_type",
    )


def model_of(data: JSON) -> str:
    model = data.get("model")
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model",
                             code="missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise _type_error("model", "a non-empty string", model)
    return model


def _int_range(data: JSON, name: str, lo: int, hi: int | None = None) -> None:
    v = data.get(name)
    if v is None:
        return
    if not _is_int(v):
        raise _type_error(name, "an integer", v)
    if v < lo or (hi is not None and v > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InvalidRequest(f"Invalid value for '{name}': must be {bound}, got {v}.",
                             param=name, code="invalid_value")


def _num_range(data: JSON, name: str, lo: float, hi: float) -> None:
    v = data.get(name)
    if v is None:
        return
    if not _is_num(v):
        raise _type_error(name, "a number", v)
    if not lo <= v <= hi:
        raise InvalidRequest(f"Invalid value for '{name}': must be between {lo:g} and {hi:g}.",
                             param=name, code="invalid_value")


def _messages(data: JSON) -> list[JSON]:
    messages = data.get("messages")
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages",
                             code="missing_required_parameter")
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages",
                             code="invalid_value")
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _type_error(where, "an object", m)
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:  # an object or list is unhashable
            raise InvalidRequest(
                f"Invalid value for '{where}.role': expected one of {sorted(ROLES)}, "
                f"got {str(role)[:40]!r}.", param=f"{where}.role", code="invalid_value")
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _type_error(f"{where}.content", "a string or an array of parts", content)
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise InvalidRequest(
                        f"Invalid content part '{where}.content[{j}]': expected an object "
                        "with a 'type'.", param=f"{where}.content[{j}]", code="invalid_type")
        if role in ("user", "system", "developer") and content is None:
            raise InvalidRequest(f"Missing required parameter: '{where}.content'.",
                                 param=f"{where}.content", code="missing_required_parameter")
    return messages


def validate_chat(data: JSON) -> None:
    """Check the fields the gateway reads; leave the rest to the upstream."""
    model_of(data)
    _messages(data)
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _type_error("stream", "a boolean", stream)
    opts = data.get("stream_options")
    if opts is not None:
        if not isinstance(opts, dict):
            raise _type_error("stream_options", "an object", opts)
        if not stream:
            raise InvalidRequest("'stream_options' is only allowed when 'stream' is true.",
                                 param="stream_options", code="invalid_value")
    _int_range(data, "max_tokens", 1)
    _int_range(data, "max_completion_tokens", 1)
    _int_range(data, "n", 1, 128)
    _num_range(data, "temperature", 0, 2)
    _num_range(data, "top_p", 0, 1)
    _num_range(data, "presence_penalty", -2, 2)
    _num_range(data, "frequency_penalty", -2, 2)
    stop = data.get("stop")
    if stop is not None and not (isinstance(stop, str) or (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
        raise _type_error("stop", "a string or an array of strings", stop)
    tools = data.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _type_error("tools", "an array", tools)
        for i, t in enumerate(tools):
            fn = t.get("function") if isinstance(t, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise InvalidRequest(f"Invalid tool 'tools[{i}]': expected a function with a "
                                     "name.", param=f"tools[{i}]", code="invalid_value")
    choice = data.get("tool_choice")
    if choice is not None and not isinstance(choice, str | dict):
        raise _type_error("tool_choice", "a string or an object", choice)
    fmt = data.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or not isinstance(fmt.get("type"), str)
                            or fmt["type"] not in FORMATS):
        raise InvalidRequest("Invalid 'response_format': 'type' must be one of "
                             f"{sorted(FORMATS)}.", param="response_format",
                             code="invalid_value")
    user = data.get("user")
    if user is not None and not isinstance(user, str):
        raise _type_error("user", "a string", user)


def validate_embeddings(data: JSON) -> None:
    model_of(data)
    inp = data.get("input")
    if inp is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input",
                             code="missing_required_parameter")
    ok = isinstance(inp, str) or (isinstance(inp, list) and inp and all(
        isinstance(x, str) or _is_int(x) or
        (isinstance(x, list) and all(_is_int(y) for y in x)) for x in inp))
    if not ok:
        raise InvalidRequest("'input' must be a string, an array of strings, or token arrays.",
                             param="input", code="invalid_type")
    dims = data.get("dimensions")
    if dims is not None and not (_is_int(dims) and 1 <= dims <= MAX_DIMENSIONS):
        raise InvalidRequest(f"'dimensions' must be an integer from 1 to {MAX_DIMENSIONS}.",
                             param="dimensions", code="invalid_value")

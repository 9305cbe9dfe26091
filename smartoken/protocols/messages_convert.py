"""Anthropic Messages (``POST /v1/messages``) <-> the canonical chat body, as pure functions.

Requests: ``system`` (a string or text blocks) becomes the first system message; a
``{"role": "system"}`` message inside ``messages`` (Claude Code sends one at the end) stays a
system message where it is; text blocks become text, ``image`` blocks ``image_url`` parts (base64
as a data URL), ``document`` blocks text (plain-text sources) or a ``file`` part with inline
``file_data`` (PDF); ``tool_use`` blocks become ``tool_calls``, ``tool_result`` blocks ``tool``
messages; ``thinking`` blocks are carried back as ``reasoning_content``. ``tools`` with
``input_schema`` become functions (``$schema`` dropped; Anthropic's server tools such as
``web_search_*`` are dropped); ``tool_choice`` maps to OpenAI's; ``thinking`` and
``output_config.effort`` become ``reasoning_effort`` (each family's dialect turns that into its
own switch); ``stop_sequences`` become ``stop``; ``metadata.user_id`` becomes ``user``.
``cache_control``, ``context_management``, ``container``, ``service_tier``, ``top_k`` and other
fields the canonical form has no place for are accepted and dropped (passed as sent to an
Anthropic-dialect upstream, which gets the client's own request).

Answers: a ``chat.completion`` becomes a ``message`` with ``thinking``, ``text`` and ``tool_use``
blocks, ``stop_reason`` and Anthropic's usage (``input_tokens`` excludes cache reads and writes).
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from smartoken.errors import GatewayError, InvalidRequest
from smartoken.protocols.base import CallView
from smartoken.providers.base import JSON, NATIVE

STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
        "function_call": "tool_use", "content_filter": "refusal"}
EFFORT = {"low": "low", "medium": "medium", "high": "high", "max": "xhigh", "xhigh": "xhigh"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 503: "overloaded_error", 529: "overloaded_error"}


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_request_error")


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"{where}: Input should be a valid string or a list of blocks")
    parts = []
    for i, b in enumerate(content):
        if not isinstance(b, dict):
            raise _bad(f"{where}.{i}: Input should be an object")
        if b.get("type") == "text":
            if not isinstance(b.get("text"), str):
                raise _bad(f"{where}.{i}.text: Field required")
            parts.append(b["text"])
    return "\n".join(parts)


def _image(b: JSON, where: str) -> JSON:
    src = b.get("source")
    if not isinstance(src, dict):
        raise _bad(f"{where}.source: Field required")
    if src.get("type") == "base64" and isinstance(src.get("data"), str):
        url = f"data:{src.get('media_type', 'image/png')};base64,{src['data']}"
    elif src.get("type") == "url" and isinstance(src.get("url"), str):
        url = src["url"]
    else:
        raise _bad(f"{where}.source: expected a base64 or url source")
    return {"type": "image_url", "image_url": {"url": url}}


def _document(b: JSON, where: str) -> JSON:
    src = b.get("source")
    if not isinstance(src, dict):
        raise _bad(f"{where}.source: Field required")
    kind = src.get("type")
    title = b.get("title") if isinstance(b.get("title"), str) else "document"
    if kind == "text" and isinstance(src.get("data"), str):
        return {"type": "text", "text": f'<document title="{title}">\n{src["data"]}\n</document>'}
    if kind == "content":
        return {"type": "text", "text": _text_of(src.get("content"), f"{where}.source.content")}
    if kind == "base64" and isinstance(src.get("data"), str):
        media = src.get("media_type", "application/pdf")
        return {"type": "file", "file": {"filename": title,
                                         "file_data": f"data:{media};base64,{src['data']}"}}
    if kind == "url" and isinstance(src.get("url"), str):
        return {"type": "text", "text": f'<document title="{title}" url="{src["url"]}"/>'}
    raise _bad(f"{where}.source: expected a text, content, base64 or url source")


def _tool_result(b: JSON, where: str) -> JSON:
    if not isinstance(b.get("tool_use_id"), str):
        raise _bad(f"{where}.tool_use_id: Field required")
    content = b.get("content", "")
    text = content if isinstance(content, str) else _text_of(content or [], f"{where}.content")
    if b.get("is_error"):
        text = "Error: " + text
    return {"role": "tool", "tool_call_id": b["tool_use_id"], "content": text}


def _message(m: Any, i: int, out: list[JSON]) -> None:
    """Append the canonical messages of ``messages[i]`` to ``out``."""
    where = f"messages.{i}"
    if not isinstance(m, dict):
        raise _bad(f"{where}: Input should be an object")
    role = m.get("role")
    if role not in ("user", "assistant", "system"):
        raise _bad(f"{where}.role: Input should be 'user' or 'assistant'")
    content = m.get("content")
    if role == "system":
        out.append({"role": "system", "content": _text_of(content, f"{where}.content")})
        return
    if isinstance(content, str):
        out.append({"role": role, "content": content})
        return
    if not isinstance(content, list):
        raise _bad(f"{where}.content: Field required")
    parts: list[JSON] = []
    calls: list[JSON] = []
    results: list[JSON] = []
    thinking: list[str] = []
    for j, b in enumerate(content):
        bw = f"{where}.content.{j}"
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            raise _bad(f"{bw}: Input should be a block with a 'type'")
        kind = b["type"]
        if kind == "text":
            if not isinstance(b.get("text"), str):
                raise _bad(f"{bw}.text: Field required")
            parts.append({"type": "text", "text": b["text"]})
        elif kind == "image":
            parts.append(_image(b, bw))
        elif kind == "document":
            parts.append(_document(b, bw))
        elif kind == "tool_use" and role == "assistant":
            if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str):
                raise _bad(f"{bw}: tool_use needs an id and a name")
            calls.append({"id": b["id"], "type": "function", "function": {
                "name": b["name"], "arguments": orjson.dumps(b.get("input") or {}).decode()}})
        elif kind == "tool_result" and role == "user":
            results.append(_tool_result(b, bw))
        elif kind == "thinking" and role == "assistant" and isinstance(b.get("thinking"), str):
            thinking.append(b["thinking"])
        # redacted_thinking, server tool blocks, search results...: no canonical place
    out.extend(results)  # tool results answer the previous assistant turn: they come first
    if role == "assistant":
        msg: JSON = {"role": "assistant", "content": _collapse(parts) if parts else None}
        if calls:
            msg["tool_calls"] = calls
        if thinking:
            msg["reasoning_content"] = "".join(thinking)
        if parts or calls or thinking:
            if msg["content"] is None and not calls:
                msg["content"] = ""
            out.append(msg)
    elif parts or not results:
        out.append({"role": "user", "content": _collapse(parts)})


def _collapse(parts: list[JSON]) -> str | list[JSON]:
    """All-text content as one string (every upstream takes that), else the parts."""
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _tools(tools: Any) -> list[JSON]:
    if not isinstance(tools, list):
        raise _bad("tools: Input should be a valid list")
    out = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict):
            raise _bad(f"tools.{i}: Input should be an object")
        schema = t.get("input_schema")
        if not isinstance(schema, dict):
            if t.get("type") not in (None, "custom"):
                continue  # a server tool (web_search_*, bash_*, ...): no canonical place
            raise _bad(f"tools.{i}.input_schema: Field required")
        if not isinstance(t.get("name"), str) or not t["name"]:
            raise _bad(f"tools.{i}.name: Field required")
        fn: JSON = {"name": t["name"],
                    "parameters": {k: v for k, v in schema.items() if k != "$schema"}}
        if isinstance(t.get("description"), str):
            fn["description"] = t["description"]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: Any, body: JSON) -> None:
    if not isinstance(choice, dict):
        raise _bad("tool_choice: Input should be an object")
    kind = choice.get("type")
    if kind == "auto":
        body["tool_choice"] = "auto"
    elif kind == "any":
        body["tool_choice"] = "required"
    elif kind == "none":
        body["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        body["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise _bad("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if choice.get("disable_parallel_tool_use") is True:
        body["parallel_tool_calls"] = False


def _effort(data: JSON) -> str | None:
    """``thinking`` / ``output_config.effort`` as OpenAI's ``reasoning_effort``."""
    thinking = data.get("thinking")
    config = data.get("output_config")
    level = config.get("effort") if isinstance(config, dict) else None
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind == "disabled":
            return "none"
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if isinstance(level, str) and level in EFFORT:
                return EFFORT[level]
            if isinstance(budget, int) and not isinstance(budget, bool):
                return "low" if budget < 4096 else "medium" if budget < 16384 else "high"
            return "medium"
        if kind == "adaptive":
            return EFFORT.get(level, "medium") if isinstance(level, str) else "medium"
    if isinstance(level, str) and level in EFFORT:
        return EFFORT[level]
    return None


def _number(data: JSON, name: str, body: JSON) -> None:
    v = data.get(name)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad(f"{name}: Input should be a valid number")
    body[name] = v


def to_chat(data: JSON, *, counting: bool = False) -> JSON:
    """The canonical chat body of a Messages request (``counting``: for count_tokens, where
    ``max_tokens`` is not required)."""
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model: Field required")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: Field required (at least one message)")
    max_tokens = data.get("max_tokens")
    if not counting and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise _bad("max_tokens: Field required")
    if isinstance(max_tokens, int) and max_tokens < 1:
        raise _bad("max_tokens: Input should be greater than or equal to 1")
    out: list[JSON] = []
    system = data.get("system")
    if system is not None:
        text = _text_of(system, "system")
        if text:
            out.append({"role": "system", "content": text})
    for i, m in enumerate(messages):
        _message(m, i, out)
    if not out:  # e.g. one assistant message with empty content: nothing to send
        raise _bad("messages: at least one message must have content")
    body: JSON = {"model": model, "messages": out}
    if isinstance(max_tokens, int) and not counting:
        body["max_tokens"] = max_tokens
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream: Input should be a valid boolean")
    if stream:
        body["stream"] = True
    _number(data, "temperature", body)
    _number(data, "top_p", body)
    stops = data.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _bad("stop_sequences: Input should be a list of strings")
        if stops:
            body["stop"] = stops[:4]
    if data.get("tools") is not None:
        tools = _tools(data["tools"])
        if tools:
            body["tools"] = tools
            if data.get("tool_choice") is not None:
                _tool_choice(data["tool_choice"], body)
    effort = _effort(data)
    if effort is not None:
        body["reasoning_effort"] = effort
    meta = data.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("user_id"), str):
        body["user"] = meta["user_id"][:256]
    return body


def message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def usage_of(u: Any) -> JSON:
    """OpenAI usage (cache reads and writes inside ``prompt_tokens``) in Anthropic's shape."""
    u = u if isinstance(u, dict) else {}
    details = u.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached = _int(details.get("cached_tokens"))
    written = _int(details.get("cache_write_tokens"))
    prompt = _int(u.get("prompt_tokens"))
    return {"input_tokens": max(0, prompt - cached - written),
            "cache_creation_input_tokens": written, "cache_read_input_tokens": cached,
            "output_tokens": _int(u.get("completion_tokens"))}


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def from_chat(resp: JSON, model: str) -> JSON:
    """A ``chat.completion`` as an Anthropic ``message``."""
    choices = resp.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") or {}
    content: list[JSON] = []
    if isinstance(msg.get("reasoning_content"), str) and msg["reasoning_content"]:
        content.append({"type": "thinking", "thinking": msg["reasoning_content"],
                        "signature": ""})
    if isinstance(msg.get("content"), str) and (msg["content"] or not msg.get("tool_calls")):
        content.append({"type": "text", "text": msg["content"]})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        try:
            args = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            args = {}
        content.append({"type": "tool_use", "id": call.get("id") or "toolu_" + message_id()[4:],
                        "name": fn.get("name"), "input": args if isinstance(args, dict) else {}})
    return {"id": message_id(), "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": STOP.get(str(choice.get("finish_reason")),
                                                        "end_turn"),
            "stop_sequence": None, "usage": usage_of(resp.get("usage"))}


def error_payload(err: GatewayError) -> JSON:
    etype = ERROR_TYPES.get(err.status, "api_error" if err.status >= 500
                            else "invalid_request_error")
    return {"type": "error", "error": {"type": etype, "message": err.message}}


def render(resp: JSON, call: CallView) -> JSON:
    native = resp.get(NATIVE)
    if isinstance(native, dict):  # an Anthropic upstream's own message, passed through
        return {**native, "model": call.requested_model}
    return from_chat(resp, call.requested_model)

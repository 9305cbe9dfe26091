"""OpenAI Responses API (``POST /v1/responses``) ↔ the relay's canonical call (a Chat
Completions body), both ways, as pure functions.

Requests: ``instructions`` and ``developer``/``system`` items become system messages (most
Chinese upstreams refuse the ``developer`` role); ``function_call`` items become the assistant's
``tool_calls`` (consecutive calls and the reasoning item before them share one assistant
message, whose ``reasoning_content`` the thinking families need back in tool-call turns);
``function_call_output`` items become ``tool`` messages. Tools: ``function`` as is;
``namespace`` (Codex's nested functions) flattened to ``<namespace>__<name>`` and split back on
the way out; ``custom`` (free-form input) becomes a function taking one ``input`` string;
``web_search``, ``file_search``, ``local_shell``, MCP and other hosted tools are dropped (no
upstream of ours runs them). ``reasoning.effort`` becomes ``reasoning_effort`` (the families'
thinking switches read it), ``text.format`` becomes ``response_format``,
``max_output_tokens`` becomes ``max_tokens``. ``include``, ``prompt_cache_key``, ``store``,
``metadata``, ``truncation``, ``service_tier``, ``client_metadata`` and unknown fields are
accepted and not sent upstream.

Responses: the assistant message becomes a ``reasoning`` item (its ``reasoning_content``, as a
summary and, when ``include`` asks for ``reasoning.encrypted_content``, as a reversible opaque
string so a stateless client such as Codex can send it back), a ``message`` item and one
``function_call`` item per tool call.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from smartoken.errors import InvalidRequest

JSON = dict[str, Any]
NS_SEP = "__"
ENCRYPTED_PREFIX = "smartoken:v1:"  # our "encrypted" reasoning: base64 of the text, not secret
HOSTED_TOOLS = frozenset({
    "web_search", "web_search_preview", "web_search_preview_2025_03_11", "file_search",
    "computer_use_preview", "computer_use", "code_interpreter", "image_generation",
    "local_shell", "shell", "mcp", "apply_patch", "tool_search"})
INPUT_ROLES = frozenset({"user", "assistant", "system", "developer"})
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter",
              "sensitive": "content_filter"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class ToolName:
    """How a chat function name maps back to a Responses tool."""

    kind: str  # "function" | "custom"
    name: str
    namespace: str | None = None


@dataclass(slots=True)
class ResponsesRequest:
    """A parsed ``POST /v1/responses``: the canonical chat body and what the answer echoes."""

    model: str
    chat: JSON
    stream: bool
    store: bool
    previous_response_id: str | None
    items: list[JSON]  # this request's input items (stored for previous_response_id)
    tool_names: dict[str, ToolName] = field(default_factory=dict)
    encrypted_reasoning: bool = False
    echo: JSON = field(default_factory=dict)


def _err(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _type_err(param: str, expected: str, value: Any) -> InvalidRequest:
    return _err(f"Invalid type for '{param}': expected {expected}, got {type(value).__name__}.",
                param, "invalid_type")


def _opt(data: JSON, name: str, kinds: type | tuple[type, ...], expected: str) -> Any:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise _type_err(name, expected, value)
    if not isinstance(value, kinds):
        raise _type_err(name, expected, value)
    return value


# ------------------------------------------------------------------ input items


def input_items(value: Any) -> list[JSON]:
    """``input`` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        raise _type_err("input", "a string or an array of items", value)
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _type_err(f"input[{i}]", "an object", item)
    return value


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _type_err(where, "a string or an array of parts", content)
    texts = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, dict) and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        elif not isinstance(part, dict):
            raise _type_err(f"{where}[{j}]", "an object", part)
    return "".join(texts)


def _user_parts(content: Any, where: str) -> str | list[JSON]:
    """A user message's content in Chat Completions parts (images and files kept)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _type_err(where, "a string or an array of parts", content)
    parts: list[JSON] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise _type_err(at, "an object", part)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise _type_err(f"{at}.text", "a string", text)
            parts.append({"type": "text", "text": text})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise _err(f"'{at}' needs an 'image_url' (a URL or data URL); 'file_id' "
                           "images are not supported.", at)
            image: JSON = {"url": url}
            if isinstance(part.get("detail"), str):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            fid = part.get("file_id")
            if not isinstance(fid, str):
                raise _err(f"'{at}' needs a 'file_id' uploaded to /v1/files.", at)
            parts.append({"type": "file", "file": {"file_id": fid}})
        else:
            raise _err(f"Unsupported content part type {kind!r} at '{at}'.", f"{at}.type")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _decode_reasoning(item: JSON) -> str:
    enc = item.get("encrypted_content")
    if isinstance(enc, str) and enc.startswith(ENCRYPTED_PREFIX):
        try:
            return base64.b64decode(enc[len(ENCRYPTED_PREFIX):], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            pass
    for key, kind in (("content", "reasoning_text"), ("summary", "summary_text")):
        parts = item.get(key)
        if isinstance(parts, list):
            text = "".join(p["text"] for p in parts if isinstance(p, dict)
                           and p.get("type") == kind and isinstance(p.get("text"), str))
            if text:
                return text
    return ""


def encode_reasoning(text: str) -> str:
    return ENCRYPTED_PREFIX + base64.b64encode(text.encode()).decode()


def _chat_name(item: JSON, where: str) -> str:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise _err(f"'{where}.name' must be a non-empty string.", f"{where}.name")
    ns = item.get("namespace")
    return f"{ns}{NS_SEP}{name}" if isinstance(ns, str) and ns else name


def to_messages(items: list[JSON]) -> list[JSON]:
    """Responses input items as Chat Completions messages."""
    messages: list[JSON] = []
    reasoning = ""  # from a reasoning item, for the assistant turn that follows it

    def assistant() -> JSON:
        nonlocal reasoning
        last = messages[-1] if messages else None
        if last is None or last.get("role") != "assistant" or last.get("_closed"):
            last = {"role": "assistant", "content": None}
            messages.append(last)
        if reasoning:
            last["reasoning_content"] = last.get("reasoning_content", "") + reasoning
            reasoning = ""
        return last

    for i, item in enumerate(items):
        where = f"input[{i}]"
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if not isinstance(role, str) or role not in INPUT_ROLES:
                raise _err(f"Invalid value for '{where}.role': expected one of "
                           f"{sorted(INPUT_ROLES)}, got {role!r}.", f"{where}.role")
            content = item.get("content")
            if role == "assistant":
                msg = assistant()
                text = _text_of(content, f"{where}.content")
                if msg.get("tool_calls"):  # text after calls starts a new turn
                    msg["_closed"] = True
                    msg = assistant()
                msg["content"] = (msg["content"] or "") + text
            elif role in ("system", "developer"):
                messages.append({"role": "system",
                                 "content": _text_of(content, f"{where}.content")})
            else:
                messages.append({"role": "user",
                                 "content": _user_parts(content, f"{where}.content")})
        elif kind == "reasoning":
            reasoning += _decode_reasoning(item)
        elif kind in ("function_call", "custom_tool_call"):
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise _err(f"'{where}.call_id' must be a non-empty string.", f"{where}.call_id")
            if kind == "function_call":
                args = item.get("arguments", "")
                if not isinstance(args, str):
                    raise _type_err(f"{where}.arguments", "a string", args)
            else:
                inp = item.get("input", "")
                if not isinstance(inp, str):
                    raise _type_err(f"{where}.input", "a string", inp)
                args = _dumps({"input": inp})
            msg = assistant()
            msg.setdefault("tool_calls", []).append(
                {"id": call_id, "type": "function",
                 "function": {"name": _chat_name(item, where), "arguments": args}})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise _err(f"'{where}.call_id' must be a non-empty string.", f"{where}.call_id")
            if messages and messages[-1].get("role") == "assistant":
                messages[-1]["_closed"] = True
            messages.append({"role": "tool", "tool_call_id": call_id,
                             "content": _text_of(item.get("output", ""), f"{where}.output")})
        # item_reference, web_search_call and other hosted-tool items carry nothing an
        # upstream of ours can use: dropped.
    for m in messages:
        m.pop("_closed", None)
        if not m.get("tool_calls"):  # reasoning goes back only with tool calls (DeepSeek's
            m.pop("reasoning_content", None)  # reasoner refuses it on plain answers)
        if m.get("role") == "assistant" and m.get("content") is None and not m.get("tool_calls"):
            m["content"] = ""
    return messages


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# ------------------------------------------------------------------ tools


def _function(tool: JSON, where: str, name: str) -> JSON:
    fn: JSON = {"name": name}
    if isinstance(tool.get("description"), str):
        fn["description"] = tool["description"]
    params = tool.get("parameters")
    fn["parameters"] = params if isinstance(params, dict) else {"type": "object",
                                                                "properties": {}}
    if isinstance(tool.get("strict"), bool):
        fn["strict"] = tool["strict"]
    return {"type": "function", "function": fn}


def to_tools(tools: Any) -> tuple[list[JSON], dict[str, ToolName]]:
    if tools is None:
        return [], {}
    if not isinstance(tools, list):
        raise _type_err("tools", "an array", tools)
    out: list[JSON] = []
    names: dict[str, ToolName] = {}

    def add(tool: JSON, where: str, namespace: str | None) -> None:
        kind = tool.get("type")
        name = tool.get("name")
        if kind in ("function", "custom"):
            if not isinstance(name, str) or not name:
                raise _err(f"Invalid tool '{where}': expected a {kind} with a name.", where)
            chat = f"{namespace}{NS_SEP}{name}" if namespace else name
            names[chat] = ToolName(kind, name, namespace)
            if kind == "function":
                out.append(_function(tool, where, chat))
            else:
                desc = tool.get("description")
                desc = desc if isinstance(desc, str) else ""
                out.append({"type": "function", "function": {
                    "name": chat, "description": desc + "\nPass the whole input as 'input'.",
                    "parameters": {"type": "object", "required": ["input"],
                                   "properties": {"input": {"type": "string"}}}}})
        elif kind == "namespace" and namespace is None:
            if not isinstance(name, str) or not name:
                raise _err(f"Invalid tool '{where}': a namespace needs a name.", where)
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise _type_err(f"{where}.tools", "an array", inner)
            for j, t in enumerate(inner):
                if not isinstance(t, dict):
                    raise _type_err(f"{where}.tools[{j}]", "an object", t)
                add(t, f"{where}.tools[{j}]", name)
        elif not isinstance(kind, str):
            raise _err(f"Invalid tool '{where}': expected an object with a 'type'.", where)
        # hosted tools (web_search, file_search, mcp, …) and unknown types: dropped

    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _type_err(f"tools[{i}]", "an object", tool)
        add(tool, f"tools[{i}]", None)
    return out, names


def _tool_choice(choice: Any, names: dict[str, ToolName]) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict):
        if choice.get("type") in ("function", "custom") and isinstance(choice.get("name"), str):
            ns = choice.get("namespace")
            name = f"{ns}{NS_SEP}{choice['name']}" if isinstance(ns, str) else choice["name"]
            if name in names:
                return {"type": "function", "function": {"name": name}}
            raise _err(f"'tool_choice' names the tool {choice['name']!r}, which is not in "
                       "'tools'.", "tool_choice")
        if choice.get("type") == "allowed_tools":
            return choice.get("mode") if choice.get("mode") in ("auto", "required") else "auto"
        return "auto"  # a hosted tool we dropped: let the model choose
    raise _type_err("tool_choice", "a string or an object", choice)


def _response_format(text: Any) -> JSON | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise _type_err("text", "an object", text)
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise _type_err("text.format", "an object", fmt)
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise _err("'text.format.schema' must be a JSON Schema object.",
                       "text.format.schema")
        name = fmt.get("name") if isinstance(fmt.get("name"), str) else "response"
        js: JSON = {"name": name, "schema": schema}
        for k in ("strict", "description"):
            if k in fmt and fmt[k] is not None:
                js[k] = fmt[k]
        return {"type": "json_schema", "json_schema": js}
    raise _err("Invalid 'text.format.type': expected one of ['json_object', 'json_schema', "
               f"'text'], got {kind!r}.", "text.format.type")


# ------------------------------------------------------------------ the request


def parse(data: JSON, history: list[JSON] | None = None) -> ResponsesRequest:
    """Validate a Responses request and build its canonical chat body. ``history`` is the
    stored conversation of ``previous_response_id`` (its input and output items)."""
    model = data.get("model")
    if model is None:
        raise _err("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise _type_err("model", "a non-empty string", model)
    if data.get("input") is None and not history:
        raise _err("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    items = input_items(data["input"]) if data.get("input") is not None else []
    stream = _opt(data, "stream", bool, "a boolean") or False
    store = _opt(data, "store", bool, "a boolean")
    prev = _opt(data, "previous_response_id", str, "a string")
    instructions = _opt(data, "instructions", str, "a string")
    include = _opt(data, "include", list, "an array") or []
    messages = to_messages([*(history or []), *items])
    if instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    if not messages:
        raise _err("'input' must contain at least one item.", "input")
    tools, names = to_tools(data.get("tools"))
    chat: JSON = {"model": model, "messages": messages}
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    if tools:
        chat["tools"] = tools
        choice = _tool_choice(data.get("tool_choice"), names)
        if choice is not None:
            chat["tool_choice"] = choice
        ptc = _opt(data, "parallel_tool_calls", bool, "a boolean")
        if ptc is not None:
            chat["parallel_tool_calls"] = ptc
    max_out = data.get("max_output_tokens")
    if max_out is not None:
        if not isinstance(max_out, int) or isinstance(max_out, bool):
            raise _type_err("max_output_tokens", "an integer", max_out)
        if max_out < 1:
            raise _err("Invalid value for 'max_output_tokens': must be at least 1.",
                       "max_output_tokens")
        chat["max_tokens"] = max_out
    for name in ("temperature", "top_p"):
        v = data.get(name)
        if v is not None:
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise _type_err(name, "a number", v)
            chat[name] = v
    reasoning = _opt(data, "reasoning", dict, "an object")
    if reasoning and isinstance(reasoning.get("effort"), str):
        chat["reasoning_effort"] = reasoning["effort"]
    fmt = _response_format(data.get("text"))
    if fmt is not None:
        chat["response_format"] = fmt
    user = data.get("safety_identifier") or data.get("user")
    if isinstance(user, str):
        chat["user"] = user
    echo = {
        "instructions": instructions,
        "max_output_tokens": max_out,
        "metadata": data.get("metadata") if isinstance(data.get("metadata"), dict) else {},
        "parallel_tool_calls": data.get("parallel_tool_calls", True),
        "previous_response_id": prev,
        "reasoning": {"effort": (reasoning or {}).get("effort"),
                      "summary": (reasoning or {}).get("summary")},
        "store": store is not False,
        "temperature": data.get("temperature"),
        "text": data.get("text") if isinstance(data.get("text"), dict)
        else {"format": {"type": "text"}},
        "tool_choice": data.get("tool_choice", "auto"),
        "tools": data.get("tools") or [],
        "top_p": data.get("top_p"),
        "truncation": data.get("truncation") or "disabled",
        "user": data.get("user") if isinstance(data.get("user"), str) else None,
    }
    return ResponsesRequest(model=model, chat=chat, stream=stream, store=store is not False,
                            previous_response_id=prev, items=items, tool_names=names,
                            encrypted_reasoning="reasoning.encrypted_content" in include,
                            echo=echo)


# ------------------------------------------------------------------ the answer


def usage_of(u: JSON | None) -> JSON | None:
    """Chat Completions usage as Responses usage."""
    if not isinstance(u, dict):
        return None
    inp, out = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
    cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {"input_tokens": inp, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": out, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": inp + out}


def reasoning_item(req: ResponsesRequest, text: str, item_id: str | None = None) -> JSON:
    item: JSON = {"type": "reasoning", "id": item_id or new_id("rs"),
                  "summary": [{"type": "summary_text", "text": text}] if text else []}
    if req.encrypted_reasoning:
        item["encrypted_content"] = encode_reasoning(text)
    return item


def message_item(text: str, item_id: str | None = None, status: str = "completed") -> JSON:
    return {"type": "message", "id": item_id or new_id("msg"), "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [],
                         "logprobs": []}]}


def call_item(req: ResponsesRequest, call_id: str, chat_name: str, arguments: str,
              item_id: str | None = None, status: str = "completed") -> JSON:
    tool = req.tool_names.get(chat_name, ToolName("function", chat_name))
    if tool.kind == "custom":
        try:
            parsed = orjson.loads(arguments or "{}")
            inp = parsed.get("input", "") if isinstance(parsed, dict) else arguments
        except ValueError:
            inp = arguments
        return {"type": "custom_tool_call", "id": item_id or new_id("ctc"), "status": status,
                "call_id": call_id, "name": tool.name, "input": inp if isinstance(inp, str)
                else _dumps(inp)}
    item: JSON = {"type": "function_call", "id": item_id or new_id("fc"), "status": status,
                  "call_id": call_id, "name": tool.name, "arguments": arguments}
    if tool.namespace:
        item["namespace"] = tool.namespace
    return item


def status_of(finish_reason: Any) -> tuple[str, JSON | None]:
    reason = INCOMPLETE.get(finish_reason) if isinstance(finish_reason, str) else None
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def response_object(req: ResponsesRequest, response_id: str, created_at: int,
                    output: list[JSON], status: str, usage: JSON | None,
                    incomplete: JSON | None = None, error: JSON | None = None) -> JSON:
    return {"id": response_id, "object": "response", "created_at": created_at,
            "status": status, "background": False, "error": error,
            "incomplete_details": incomplete, "model": req.model, "output": output,
            **req.echo, "usage": usage}


def render(req: ResponsesRequest, resp: JSON, response_id: str,
           created_at: int | None = None) -> JSON:
    """A Chat Completions answer as a Responses object."""
    choices = resp.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") or {}
    output: list[JSON] = []
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(req, reasoning))
    content = msg.get("content")
    if isinstance(content, str) and content:
        output.append(message_item(content))
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        output.append(call_item(req, str(call.get("id") or new_id("call")),
                                str(fn.get("name") or ""), str(fn.get("arguments") or "")))
    status, incomplete = status_of(choice.get("finish_reason"))
    return response_object(req, response_id, created_at or int(time.time()), output, status,
                           usage_of(resp.get("usage")), incomplete)


def output_text(output: list[JSON]) -> str:
    return "".join(part.get("text", "") for item in output if item.get("type") == "message"
                   for part in item.get("content") or [] if isinstance(part, dict))

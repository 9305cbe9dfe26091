"""The playground: the browser streams a chat through the same relay pipeline as /v1.

The page posts to ``/console/api/playground`` with the session cookie and the CSRF header. The
handler runs ``relay.pipeline`` exactly as ``POST /v1/chat/completions`` does, with the
account's *playground key*: an ordinary API key (name "Console playground") that the console
creates on first use and whose secret it never keeps or shows. So each answer is reserved,
routed, billed to the account's wallet and recorded in the usage log like any other request,
and it shows under that key in the usage page. Revoking it makes the console create a new one.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from smartoken.api.http import JSONResponse, read_body
from smartoken.auth.keys import KeyContext, context_from_row, generate_key
from smartoken.console import store
from smartoken.console.http import Ctx, gateway_url
from smartoken.console.models import model_rows
from smartoken.console.samples import SampleRequest, all_samples
from smartoken.errors import InvalidRequest
from smartoken.protocols import chat, wire
from smartoken.relay import pipeline
from smartoken.relay.stream import RelayStream
from smartoken.store import repo

PLAYGROUND_KEY_NAME = "Console playground"
MAX_MESSAGES = 100


async def playground_key(ctx: Ctx) -> KeyContext:
    engine, user = ctx.state.engine, ctx.user
    setting = f"playground_key:{user.id}"
    stored = await store.get_setting(engine, setting)
    row = await repo.get_key(engine, int(stored)) if stored and stored.isdigit() else None
    if row is None or row["revoked_at"] is not None or row["account_id"] != user.id:
        _secret, prefix, digest = generate_key()  # the secret is dropped: never shown or kept
        key_id = await repo.insert_key(engine, user.id, prefix, digest,
                                       repo.KeyFields(name=PLAYGROUND_KEY_NAME))
        await store.set_setting(engine, setting, str(key_id))
        row = await repo.get_key(engine, key_id)
        assert row is not None
    return context_from_row({**row, "account_name": user.name, "role": user.role})


async def playground_page(ctx: Ctx) -> Response:
    rows = [r for r in model_rows(ctx.state) if r["spec"].kind == "chat"]
    wanted = ctx.request.query_params.get("model", "")
    ids = [r["spec"].id for r in rows]
    selected = wanted if wanted in ids else ("demo" if "demo" in ids else ids[0] if ids else "")
    return ctx.render("playground.html", rows=rows, selected=selected)


def _number(data: dict[str, Any], field: str, kind: type) -> Any:
    value = data.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (kind is int and not isinstance(value, int)):
        raise InvalidRequest(f"{field} must be a number.", param=field)
    return value


# The sample function offered by the playground's *Tools* switch.
SAMPLE_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
MAX_FILES = 5


def _file_ids(data: dict[str, Any]) -> list[str]:
    ids = data.get("file_ids") or []
    if not isinstance(ids, list) or len(ids) > MAX_FILES or \
            not all(isinstance(i, str) and i.startswith("file-") for i in ids):
        raise InvalidRequest(f"file_ids must list at most {MAX_FILES} file ids.",
                             param="file_ids")
    return ids


def chat_body(data: Any) -> dict[str, Any]:
    """The Chat Completions body of a playground form: always streamed, usage included; the
    JSON and tools switches, and files attached to the last user message (Files API ids)."""
    if not isinstance(data, dict):
        raise InvalidRequest("Expected a JSON object.")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        raise InvalidRequest("Write a message first.", param="messages")
    out: list[dict[str, Any]] = []
    system = data.get("system")
    if isinstance(system, str) and system.strip():
        out.append({"role": "system", "content": system})
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant") or \
                not isinstance(m.get("content"), str):
            raise InvalidRequest("Each message needs a role (user or assistant) and text.",
                                 param="messages")
        out.append({"role": m["role"], "content": m["content"]})
    ids = _file_ids(data)
    if ids:
        if out[-1]["role"] != "user":
            raise InvalidRequest("Files go with a user message.", param="file_ids")
        parts: list[dict[str, Any]] = [{"type": "text", "text": out[-1]["content"]}]
        parts += [{"type": "file", "file": {"file_id": i}} for i in ids]
        out[-1] = {"role": "user", "content": parts}
    body: dict[str, Any] = {"model": data.get("model"), "messages": out, "stream": True,
                            "stream_options": {"include_usage": True}}
    if data.get("json_mode") is True:
        body["response_format"] = {"type": "json_object"}
    if data.get("tools") is True:
        body["tools"] = [SAMPLE_TOOL]
    temperature = _number(data, "temperature", float)
    if temperature is not None:
        body["temperature"] = temperature
    max_tokens = _number(data, "max_tokens", int)
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


async def playground_chat(ctx: Ctx) -> Any:
    state = ctx.state
    data = wire.parse_json(await read_body(ctx.request, state.settings.max_body_bytes))
    body = chat.PROTOCOL.parse(chat_body(data))
    key = await playground_key(ctx)
    ctx.request.scope.setdefault("state", {})["key"] = key  # for a refusal's log
    call = await pipeline.prepare(state, ctx.request.state.request_id, key, body)
    route, provider, it, first = await pipeline.open_stream(state, call)
    return RelayStream(state, call, route, provider, it, first, chat.PROTOCOL.framer(call))


async def playground_samples(ctx: Ctx) -> Response:
    """The playground's current request as cURL, Python and TypeScript."""
    data = wire.parse_json(await read_body(ctx.request, 1024 * 1024))
    body = chat_body(data)
    sample = SampleRequest(gateway_url(ctx.request), str(body["model"]),
                           messages=body["messages"], temperature=body.get("temperature"),
                           max_tokens=body.get("max_tokens"),
                           extra={k: body[k] for k in ("response_format", "tools") if k in body})
    return JSONResponse(all_samples(sample))

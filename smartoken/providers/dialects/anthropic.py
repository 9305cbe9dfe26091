"""Anthropic Messages, translated both ways so a route can point at Claude.

Requests: system and developer messages become ``system``; content parts become content blocks
(text, images); assistant ``tool_calls`` become ``tool_use`` blocks and ``tool`` messages
``tool_result`` blocks in a user turn; ``tools``/``tool_choice`` are mapped; ``max_tokens`` is
required; ``stop`` becomes ``stop_sequences``; temperature is kept in 0-1.
Answers: content blocks become ``content``, ``tool_calls`` and ``reasoning_content``;
``stop_reason`` becomes ``finish_reason``; usage ``input_tokens`` (plus cache reads and writes)
and ``output_tokens`` become OpenAI usage with cached tokens. Stream events (``message_start``,
``content_block_start/delta``, ``message_delta``, ``message_stop``) become
``chat.completion.chunk`` objects.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from smartoken.providers.base import JSON, UpstreamError
from smartoken.providers.dialects.base import Dialect, _int

VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
          "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop"}


def _blocks(content: Any) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[JSON] = []
    for part in content or ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            out.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            if url.startswith("data:"):
                media, _, data = url[5:].partition(";base64,")
                out.append({"type": "image", "source": {"type": "base64", "media_type": media,
                                                         "data": data}})
            else:
                out.append({"type": "image", "source": {"type": "url", "url": url}})
    return out


def _text(content: Any) -> str:
    return "".join(b["text"] for b in _blocks(content) if b["type"] == "text")


def _tool_choice(choice: Any) -> JSON | None:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name")}
    return None


def to_messages(body: JSON) -> JSON:
    """An OpenAI chat request as an Anthropic Messages request."""
    system: list[str] = []
    turns: list[JSON] = []
    for m in body.get("messages") or ():
        role = m.get("role")
        if role in ("system", "developer"):
            system.append(_text(m.get("content")))
            continue
        if role == "tool":
            blocks = [{"type": "tool_result", "tool_use_id": m.get("tool_call_id"),
                       "content": _text(m.get("content"))}]
            role = "user"
        else:
            blocks = _blocks(m.get("content"))
            for call in m.get("tool_calls") or ():
                fn = call.get("function") or {}
                try:
                    args = orjson.loads(fn.get("arguments") or "{}")
                except orjson.JSONDecodeError:
                    args = {"_raw": fn.get("arguments")}
                blocks.append({"type": "tool_use", "id": call.get("id"), "name": fn.get("name"),
                               "input": args})
            role = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:  # Anthropic wants alternating turns
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    out: JSON = {"model": body.get("model"), "messages": turns,
                 "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens")
                 or DEFAULT_MAX_TOKENS}
    if system:
        out["system"] = "\n\n".join(s for s in system if s)
    t = body.get("temperature")
    if isinstance(t, int | float) and not isinstance(t, bool):
        out["temperature"] = min(max(float(t), 0.0), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = body.get("tools")
    if tools:
        out["tools"] = [{"name": t["function"]["name"],
                         "description": t["function"].get("description", ""),
                         "input_schema": t["function"].get("parameters")
                         or {"type": "object", "properties": {}}}
                        for t in tools if isinstance(t, dict) and "function" in t]
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        out["stream"] = True
    return out


def _as_blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content) if isinstance(content, list) else []


def native_request(data: JSON, canonical: JSON) -> JSON:
    """The client's own request for an Anthropic-dialect upstream: as sent (thinking
    signatures, cache markers and betas survive), with the gateway's model id, ``max_tokens``
    and stream flag, and ``system``-role messages folded into ``system`` (not every
    Anthropic-compatible endpoint takes them)."""
    body = dict(data)
    body["model"] = canonical["model"]
    body["max_tokens"] = canonical.get("max_tokens") or data.get("max_tokens")
    body["stream"] = bool(canonical.get("stream"))
    messages = data.get("messages") or []
    extra = [m for m in messages if isinstance(m, dict) and m.get("role") == "system"]
    if extra:
        turns: list[JSON] = []
        for m in messages:
            if not isinstance(m, dict) or m.get("role") == "system":
                continue
            if turns and turns[-1].get("role") == m.get("role"):  # keep turns alternating
                turns[-1] = {**turns[-1], "content": _as_blocks(turns[-1].get("content"))
                             + _as_blocks(m.get("content"))}
            else:
                turns.append(m)
        body["messages"] = turns
        system = data.get("system")
        blocks = [{"type": "text", "text": system}] if isinstance(system, str) and system \
            else list(system) if isinstance(system, list) else []
        blocks += [{"type": "text", "text": _text(m.get("content"))}
                   for m in extra]
        body["system"] = blocks
    return body


def _usage(raw: Any, prompt: int | None = None) -> JSON:
    raw = raw if isinstance(raw, dict) else {}
    cached = _int(raw.get("cache_read_input_tokens"))
    written = _int(raw.get("cache_creation_input_tokens"))
    if prompt is None:
        prompt = _int(raw.get("input_tokens")) + cached + _int(
            raw.get("cache_creation_input_tokens"))
    out = _int(raw.get("output_tokens"))
    usage: JSON = {"prompt_tokens": prompt, "completion_tokens": out,
                   "total_tokens": prompt + out}
    if cached or written:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
        if written:
            usage["prompt_tokens_details"]["cache_write_tokens"] = written
    return usage


def from_message(msg: JSON) -> JSON:
    """An Anthropic message as an OpenAI ``chat.completion``."""
    text: list[str] = []
    thinking: list[str] = []
    calls: list[JSON] = []
    for b in msg.get("content") or ():
        kind = b.get("type")
        if kind == "text":
            text.append(b.get("text", ""))
        elif kind == "thinking":
            thinking.append(b.get("thinking", ""))
        elif kind == "tool_use":
            calls.append({"id": b.get("id"), "type": "function", "function": {
                "name": b.get("name"), "arguments": orjson.dumps(b.get("input") or {}).decode()}})
    message: JSON = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    return {"id": msg.get("id"), "object": "chat.completion", "created": int(time.time()),
            "model": msg.get("model"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": FINISH.get(msg.get("stop_reason") or "", "stop")}],
            "usage": _usage(msg.get("usage"))}


class StreamTranslator:
    """Anthropic stream events in, OpenAI chunks out (None for events that carry nothing)."""

    __slots__ = ("cached", "created", "done", "id", "model", "prompt", "tools", "written")

    def __init__(self) -> None:
        self.id, self.model, self.created = "", "", int(time.time())
        self.prompt = self.cached = self.written = 0
        self.tools: dict[int, int] = {}  # content block index -> tool call index
        self.done = False

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                  "finish_reason": finish}]}

    def feed(self, event: JSON) -> JSON | None:
        kind = event.get("type")
        if kind == "content_block_delta":
            d = event.get("delta") or {}
            dk = d.get("type")
            if dk == "text_delta":
                return self._chunk({"content": d.get("text", "")})
            if dk == "thinking_delta":
                return self._chunk({"reasoning_content": d.get("thinking", "")})
            if dk == "input_json_delta":
                i = self.tools.get(_int(event.get("index")), 0)
                return self._chunk({"tool_calls": [{"index": i, "function": {
                    "arguments": d.get("partial_json", "")}}]})
            return None
        if kind == "message_start":
            msg = event.get("message") or {}
            self.id, self.model = msg.get("id", ""), msg.get("model", "")
            u = msg.get("usage") or {}
            self.prompt = _int(u.get("input_tokens")) + _int(
                u.get("cache_read_input_tokens")) + _int(u.get("cache_creation_input_tokens"))
            self.cached = _int(u.get("cache_read_input_tokens"))
            self.written = _int(u.get("cache_creation_input_tokens"))
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                i = self.tools[_int(event.get("index"))] = len(self.tools)
                return self._chunk({"tool_calls": [{"index": i, "id": block.get("id"),
                                                    "type": "function", "function": {
                                                        "name": block.get("name"),
                                                        "arguments": ""}}]})
            if block.get("type") == "text" and block.get("text"):
                return self._chunk({"content": block["text"]})
            return None
        if kind == "message_delta":
            d = event.get("delta") or {}
            chunk = self._chunk({}, FINISH.get(d.get("stop_reason") or "", "stop"))
            usage = _usage(event.get("usage"), self.prompt)
            if self.cached or self.written:
                usage["prompt_tokens_details"] = {"cached_tokens": self.cached}
                if self.written:
                    usage["prompt_tokens_details"]["cache_write_tokens"] = self.written
            chunk["usage"] = usage
            return chunk
        if kind == "message_stop":
            self.done = True
            return None
        if kind == "error":
            raise AnthropicDialect().event_error(event)
        return None  # ping, content_block_stop


class AnthropicDialect(Dialect):
    name = "anthropic"
    transport = "anthropic"

    def prepare(self, body: JSON, stream: bool) -> None:
        return None  # the adapter translates the whole request (to_messages)

    def event_error(self, event: JSON) -> UpstreamError:
        err = event.get("error") or {}
        status = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500,
                  "invalid_request_error": 400}.get(str(err.get("type")), 500)
        return self.error(status, orjson.dumps(event), None)

    def error(self, status: int, raw: bytes, retry_after: float | None) -> UpstreamError:
        message, _, etype = self._error_fields(raw)
        if status == 529 or etype == "overloaded_error":
            return UpstreamError(f"upstream overloaded: {message}", kind="server", status=529,
                                 retry_after=retry_after)
        if etype == "billing_error" or (status == 400 and "credit balance" in message):
            return UpstreamError(f"upstream out of balance: {message}", kind="quota",
                                 status=status)
        return super().error(status, raw, retry_after)

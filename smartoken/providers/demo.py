"""The built-in ``demo`` provider: deterministic answers, streamed with realistic pacing.

It is not a model. It lets the console, the playground and the SDK examples work on a fresh
machine with no vendor account: it streams token by token, reports usage, answers with a tool
call when tools are offered, and with JSON in JSON mode. Every answer says it is a demo.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from smartoken import tokens
from smartoken.providers.base import JSON, UpstreamError
from smartoken.providers.dialects.base import Dialect

FINGERPRINT = "smartoken-demo"
DEMO_DIMS = 3072  # the largest OpenAI embedding; the demo builds one vector per input
_WORDS = re.compile(r"\S+\s*|\s+")


def _last_user_text(messages: list[JSON]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
    return ""


def _sample(schema: Any, name: str = "value") -> Any:
    """A value that satisfies a (simple) JSON schema, for tool arguments and json_schema."""
    if not isinstance(schema, dict):
        return "demo"
    if schema.get("enum"):
        return schema["enum"][0]
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if t == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: _sample(v, k) for k, v in props.items()}
    if t == "array":
        return [_sample(schema.get("items"), name)]
    if t == "integer":
        return 42
    if t == "number":
        return 4.2
    if t == "boolean":
        return True
    return f"demo {name}"


class DemoProvider:
    native_protocol: str | None = None
    name = "demo"
    dialect = Dialect()

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay

    def _answer(self, body: JSON) -> tuple[str, list[JSON] | None]:
        messages = body.get("messages") or []
        tools = body.get("tools") or []
        choice = body.get("tool_choice", "auto")
        last_is_tool = bool(messages) and messages[-1].get("role") == "tool"
        if tools and choice != "none" and not last_is_tool:
            tool = tools[0]
            if isinstance(choice, dict):
                wanted = (choice.get("function") or {}).get("name")
                tool = next((t for t in tools if t.get("function", {}).get("name") == wanted),
                            tool)
            fn = tool.get("function") or {}
            import orjson

            args = orjson.dumps(_sample(fn.get("parameters") or {})).decode()
            # Fresh ids per answer, as a vendor's: clients key tool results by them.
            return "", [{"id": f"call_{secrets.token_hex(12)}", "type": "function",
                         "function": {"name": fn.get("name", "tool"), "arguments": args}}]
        asked = _last_user_text(messages).strip()
        fmt = body.get("response_format") or {}
        if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
            import orjson

            schema = (fmt.get("json_schema") or {}).get("schema")
            obj = _sample(schema) if schema else {
                "demo": True, "provider": FINGERPRINT, "question": asked[:200],
                "answer": "This is a deterministic demo answer, not a model's.",
            }
            return orjson.dumps(obj).decode(), None
        if last_is_tool:
            result = str(messages[-1].get("content", ""))[:200]
            return f"[demo] The tool returned: {result}", None
        quoted = asked[:160] + ("…" if len(asked) > 160 else "")
        text = (
            "[demo] This answer comes from SmarToken's built-in demo provider, not from a real "
            f"model. You asked: \"{quoted}\". Set a vendor key such as MOONSHOT_API_KEY or "
            "configure a route to get real answers; budgets, usage records and wallet debits "
            "work the same way."
        )
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and limit > 0:
            enc = tokens.encoding()
            ids = enc.encode_ordinary(text)
            if len(ids) > limit:
                text = enc.decode(ids[:limit])
        return text, None

    def _usage(self, body: JSON, text: str, calls: list[JSON] | None) -> JSON:
        prompt = tokens.count_messages(body.get("messages") or [], body.get("tools"))
        completion = tokens.count_text(text) + sum(
            tokens.count_text(c["function"]["arguments"]) + 4 for c in calls or []
        )
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    def _head(self, body: JSON, obj: str) -> JSON:
        return {"id": f"chatcmpl-demo{secrets.token_hex(12)}", "object": obj,
                "created": int(time.time()),
                "model": body.get("model", "demo"), "system_fingerprint": FINGERPRINT}

    async def complete(self, body: JSON) -> JSON:
        text, calls = self._answer(body)
        message: JSON = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        return {**self._head(body, "chat.completion"), "choices": [{
            "index": 0, "message": message, "logprobs": None,
            "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": self._usage(body, text, calls)}

    async def stream(self, body: JSON) -> AsyncIterator[list[JSON]]:
        text, calls = self._answer(body)
        head = self._head(body, "chat.completion.chunk")

        def chunk(delta: JSON, finish: str | None = None) -> JSON:
            return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                         "finish_reason": finish}]}

        yield [chunk({"role": "assistant", "content": ""})]
        if calls:
            for i, call in enumerate(calls):
                await asyncio.sleep(self.delay)
                yield [chunk({"tool_calls": [{"index": i, **call}]})]
        else:
            for piece in _WORDS.findall(text):
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield [chunk({"content": piece})]
        yield [chunk({}, "tool_calls" if calls else "stop"),
               {**head, "choices": [], "usage": self._usage(body, text, calls)}]

    async def embed(self, body: JSON) -> JSON:
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        dims = body.get("dimensions")
        if dims is None:
            dims = 256
        elif not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= DEMO_DIMS:
            raise UpstreamError(f"{self.name}: dimensions must be from 1 to {DEMO_DIMS}",
                                kind="client", status=400, retryable=False,
                                body={"message": f"'dimensions' must be an integer from 1 to "
                                                 f"{DEMO_DIMS} for demo models.",
                                      "code": "invalid_value"})
        data, total = [], 0
        for i, item in enumerate(items):
            text = item if isinstance(item, str) else str(item)
            total += tokens.count_text(text)
            seed = hashlib.sha256(text.encode()).digest()
            raw = [((seed[j % 32] ^ (j * 31)) % 251) / 125.0 - 1.0 for j in range(dims)]
            norm = math.sqrt(sum(x * x for x in raw)) or 1.0
            data.append({"object": "embedding", "index": i,
                         "embedding": [round(x / norm, 6) for x in raw]})
        return {"object": "list", "data": data, "model": body.get("model", "demo-embedding"),
                "usage": {"prompt_tokens": total, "total_tokens": total}}

    async def aclose(self) -> None:
        return None

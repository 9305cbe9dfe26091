"""DeepSeek: ``reasoning_content`` beside ``content`` (passed through as is); cache usage as
``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens``; 402 insufficient balance, 422
invalid parameters, 503 overloaded.

Thinking (api-docs.deepseek.com/guides/thinking_mode): on by default, switched by
``thinking: {"type": "enabled"|"disabled"}``, depth by ``reasoning_effort`` (low, high, max;
DeepSeek maps minimal/medium/xhigh/ultra itself). OpenAI's ``reasoning_effort: "none"`` becomes
``thinking: disabled``; any other level is passed on with thinking enabled. In thinking mode an
assistant turn that made tool calls must come back with its ``reasoning_content`` (a 400
otherwise): the gateway passes it through untouched. The legacy ``deepseek-reasoner`` (R1
upstream ids) ignores sampling parameters and rejects ``logprobs`` and ``reasoning_content``
sent back as input except on tool-call turns: those are stripped."""

from __future__ import annotations

from smartoken.providers.base import JSON, UpstreamError, Usage
from smartoken.providers.dialects.base import Dialect, _int, effort

REASONER_DROPS = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "logprobs",
                  "top_logprobs")


class DeepSeekDialect(Dialect):
    name = "deepseek"

    def prepare(self, body: JSON, stream: bool) -> None:
        super().prepare(body, stream)
        if effort(body) == "none":
            body.pop("reasoning_effort")
            body.setdefault("thinking", {"type": "disabled"})
        elif effort(body) is not None:
            body.setdefault("thinking", {"type": "enabled"})
        if "reasoner" not in str(body.get("model", "")):
            return
        for k in REASONER_DROPS:
            body.pop(k, None)
        messages = body.get("messages")
        if isinstance(messages, list) and any(
                isinstance(m, dict) and "reasoning_content" in m and not m.get("tool_calls")
                for m in messages):
            body["messages"] = [
                {k: v for k, v in m.items() if k != "reasoning_content"}
                if isinstance(m, dict) and not m.get("tool_calls") else m for m in messages]

    def usage(self, obj: JSON) -> Usage | None:
        usage = super().usage(obj)
        raw = obj.get("usage")
        if usage is not None and isinstance(raw, dict) and "prompt_cache_hit_tokens" in raw:
            usage.cached_tokens = _int(raw.get("prompt_cache_hit_tokens"))
        return usage

    def error(self, status: int, raw: bytes, retry_after: float | None) -> UpstreamError:
        if status == 422:
            message, code, _ = self._error_fields(raw)
            return UpstreamError(f"upstream returned 422: {message}", kind="client", status=400,
                                 retryable=False, body={"message": message,
                                                        "type": "invalid_request_error",
                                                        "code": code or "invalid_parameters"})
        return super().error(status, raw, retry_after)

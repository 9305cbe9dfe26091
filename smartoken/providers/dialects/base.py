"""The plain OpenAI dialect. Family dialects subclass it and override only what differs."""

from __future__ import annotations

from typing import Any

import orjson

from smartoken.providers.base import JSON, UpstreamError, Usage

# Tokens an upstream may report for one request: far beyond any context window and output
# limit. A report above it (a lie, or a bug) is read as this bound; a negative one, or not a
# number, as 0.
MAX_REPORTED_TOKENS = 100_000_000


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        return 0
    return min(max(value, 0), MAX_REPORTED_TOKENS)


# OpenAI's ``reasoning_effort`` values; "none" turns reasoning off where a model allows it.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def effort(body: JSON) -> str | None:
    """The client's OpenAI-style ``reasoning_effort`` (None when absent or not a string)."""
    value = body.get("reasoning_effort")
    return value if isinstance(value, str) else None


def thinking_switch(body: JSON) -> None:
    """For families whose switch is ``thinking: {"type": "enabled"|"disabled"}`` and that
    have no effort levels: ``reasoning_effort`` becomes the switch ("none" turns thinking off,
    any other level on) unless the client (or the model's catalog entry) sent ``thinking``."""
    level = effort(body)
    if level is None:
        return
    body.pop("reasoning_effort")
    body.setdefault("thinking", {"type": "disabled" if level == "none" else "enabled"})


class Dialect:
    name = "openai"
    transport = "openai"  # the adapter that speaks it (providers/factory.py)
    # The output limit field the upstream honours. Every family we route to documents
    # ``max_tokens``; several ignore ``max_completion_tokens`` and generate their default
    # length, so the gateway sends the reserved limit here and nothing in the other field.
    output_field = "max_tokens"

    def prepare(self, body: JSON, stream: bool) -> None:
        """Adjust an outgoing request in place (the model id is already the upstream's)."""
        if stream:
            opts = body.get("stream_options")
            opts = dict(opts) if isinstance(opts, dict) else {}
            opts["include_usage"] = True
            body["stream_options"] = opts

    def usage(self, obj: JSON) -> Usage | None:
        """Usage carried by a response or chunk, wherever this dialect puts it."""
        raw = obj.get("usage")
        if not isinstance(raw, dict):
            choices = obj.get("choices")
            if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                raw = choices[0].get("usage")
            if not isinstance(raw, dict):
                return None
        usage = Usage(_int(raw.get("prompt_tokens")), _int(raw.get("completion_tokens")))
        details = raw.get("prompt_tokens_details")
        if isinstance(details, dict):
            usage.cached_tokens = _int(details.get("cached_tokens"))
            usage.cache_write_tokens = _int(details.get("cache_write_tokens"))
        if not usage.cached_tokens:
            usage.cached_tokens = _int(raw.get("prompt_cache_hit_tokens")) or _int(
                raw.get("cached_tokens")
            )
        cdetails = raw.get("completion_tokens_details")
        if isinstance(cdetails, dict):
            usage.reasoning_tokens = _int(cdetails.get("reasoning_tokens"))
        return usage

    def normalize_chunk(self, chunk: JSON) -> JSON:
        """Make a stream chunk plain OpenAI: usage tucked inside a choice moves to the top level
        (where the relay reads it; one value per chunk, never summed)."""
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and "usage" in choice:
                    usage = choice.pop("usage")
                    if isinstance(usage, dict):
                        chunk["usage"] = usage
        return chunk

    def normalize_response(self, resp: JSON) -> JSON:
        return resp

    def error(self, status: int, raw: bytes, retry_after: float | None) -> UpstreamError:
        """Translate an upstream error answer into an ``UpstreamError``."""
        message, code, etype = self._error_fields(raw)
        text = f"upstream returned {status}" + (f": {message}" if message else "")
        if status == 429:
            if etype == "exceeded_current_quota_error" or code == "insufficient_quota":
                return UpstreamError(text, kind="quota", status=status)
            return UpstreamError(text, kind="rate_limited", status=status, retry_after=retry_after)
        if status == 402:
            return UpstreamError(text, kind="quota", status=status)
        if status in (401, 403):
            return UpstreamError(text, kind="auth", status=status)
        if status >= 500 or status == 408:
            return UpstreamError(text, kind="server", status=status, retry_after=retry_after)
        body: JSON = {"message": message or text, "type": etype or "invalid_request_error",
                      "code": code}
        return UpstreamError(text, kind="client", status=status, retryable=False, body=body)

    @staticmethod
    def _error_fields(raw: bytes) -> tuple[str, str | None, str | None]:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw[:200].decode("utf-8", "replace"), None, None
        if not isinstance(data, dict):
            return "", None, None
        err = data.get("error", data)
        if isinstance(err, str):
            return err, None, None
        if not isinstance(err, dict):
            return "", None, None
        msg = err.get("message") or err.get("error_msg") or data.get("message") or ""
        code = err.get("code") or err.get("error_code")
        return str(msg), None if code is None else str(code), err.get("type")

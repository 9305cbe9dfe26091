"""Kimi (Moonshot): usage inside ``choices[0].usage`` of the final stream chunk (sometimes also at
top level: the last value wins, never summed); cached prompt tokens as top-level
``usage.cached_tokens``; temperature 0-1; ``n`` at most 5 and 1 when temperature is about 0;
out of balance is 429 ``exceeded_current_quota_error`` (or 403 insufficient balance).

Thinking (platform.kimi.ai docs): ``kimi-k2.5``/``kimi-k2.6`` switch it with ``thinking:
{"type": "enabled"|"disabled"}`` (no levels); ``kimi-k3`` always reasons, at
``reasoning_effort`` low, high or max; ``kimi-k2.7-code`` always reasons and refuses
``thinking: disabled``. OpenAI's ``reasoning_effort`` is mapped per model; other models get it
as sent (Moonshot ignores unknown fields)."""

from __future__ import annotations

from smartoken.providers.base import JSON, UpstreamError
from smartoken.providers.dialects.base import Dialect, effort, thinking_switch

MAX_N = 5
ZERO_TEMPERATURE = 0.01
K3_EFFORT = {"none": "low", "minimal": "low", "low": "low", "medium": "high", "high": "high",
             "xhigh": "max", "max": "max"}


def _reasoning(body: JSON) -> None:
    model = str(body.get("model", ""))
    level = effort(body)
    if level is None:
        return
    if model.startswith("kimi-k3"):
        body["reasoning_effort"] = K3_EFFORT.get(level, "high")
    elif model.startswith("kimi-k2.7-code"):
        body.pop("reasoning_effort")  # always thinks; no level to set
    elif model.startswith(("kimi-k2.5", "kimi-k2.6")):
        thinking_switch(body)


class MoonshotDialect(Dialect):
    name = "moonshot"

    def prepare(self, body: JSON, stream: bool) -> None:
        super().prepare(body, stream)
        _reasoning(body)
        t = body.get("temperature")
        if isinstance(t, int | float) and not isinstance(t, bool):
            t = min(max(float(t), 0.0), 1.0)
            body["temperature"] = t
        n = body.get("n")
        if isinstance(n, int) and not isinstance(n, bool):
            if isinstance(t, float) and t < ZERO_TEMPERATURE:
                body["n"] = 1
            elif n > MAX_N:
                body["n"] = MAX_N

    def error(self, status: int, raw: bytes, retry_after: float | None) -> UpstreamError:
        message, _, etype = self._error_fields(raw)
        if etype == "exceeded_current_quota_error" or (
                status == 403 and "balance" in message.lower()):
            return UpstreamError(f"upstream out of balance ({status}): {message}", kind="quota",
                                 status=status)
        return super().error(status, raw, retry_after)

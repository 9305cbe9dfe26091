"""Fill in the middle (legacy ``/v1/completions`` with ``suffix``) for the upstreams that have a
FIM endpoint: DeepSeek's beta ``/completions`` (``https://api.deepseek.com/beta``) and Qwen's
OpenAI-compatible ``/completions`` (DashScope compatible mode, coder models).

The canonical chat body of such a request carries ``suffix`` beside its one user message (the
prompt). These helpers build the upstream's ``prompt`` + ``suffix`` request and turn its
``text_completion`` answers and chunks back into chat objects, so the relay (billing, usage,
streaming) handles them like any chat answer.
"""

from __future__ import annotations

import re
from typing import Any

JSON = dict[str, Any]
FIM_DIALECTS = frozenset({"deepseek", "qwen"})
PASSED = ("model", "max_tokens", "temperature", "top_p", "stop", "stream", "stream_options",
          "presence_penalty", "frequency_penalty", "seed", "user", "n")


def url(dialect: str, base_url: str) -> str | None:
    """The FIM endpoint of a provider, or None when its dialect has none."""
    if dialect == "deepseek":  # only the beta base serves FIM
        return re.sub(r"/(v1|beta)/?$", "", base_url.rstrip("/")) + "/beta/completions"
    if dialect == "qwen":
        return base_url.rstrip("/") + "/completions"
    return None


def request(body: JSON) -> JSON:
    """The upstream FIM request for a canonical body with ``suffix``."""
    messages = body.get("messages") or [{}]
    out = {k: body[k] for k in PASSED if k in body}
    out["prompt"] = messages[-1].get("content") or ""
    out["suffix"] = body["suffix"]
    return out


def _choice(c: Any, i: int, delta: bool) -> JSON:
    c = c if isinstance(c, dict) else {}
    text = c.get("text") if isinstance(c.get("text"), str) else ""
    key, value = ("delta", {"content": text}) if delta else \
        ("message", {"role": "assistant", "content": text})
    return {"index": c.get("index", i), key: value, "finish_reason": c.get("finish_reason")}


def to_chat(resp: JSON, delta: bool = False) -> JSON:
    """A ``text_completion`` answer (or chunk, with ``delta``) as a chat object."""
    out = {k: v for k, v in resp.items() if k != "choices"}
    out["object"] = "chat.completion.chunk" if delta else "chat.completion"
    out["choices"] = [_choice(c, i, delta) for i, c in enumerate(resp.get("choices") or [])]
    return out

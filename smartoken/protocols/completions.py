"""Legacy Completions (``POST /v1/completions``): a prompt in, text out.

The prompt becomes one user message of the canonical chat body, so every chat model serves it;
the answer's message content comes back as ``choices[].text`` (``text_completion`` objects,
streamed as ``text_completion`` chunks and ``[DONE]``). ``suffix`` (fill in the middle) needs
an upstream with a FIM endpoint (``providers/fim.py``): the request is refused, naming the
field, when one of the model's routes has none. ``echo`` prepends the prompt to the text;
``logprobs`` and ``best_of`` are accepted and ignored; ``max_tokens`` unset means the model's
default output, not OpenAI's 16.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from smartoken.errors import GatewayError, InvalidRequest, sse_error
from smartoken.providers.base import JSON, Usage

DONE_FRAME = b"data: [DONE]\n\n"
PASSED = ("max_tokens", "temperature", "top_p", "n", "stop", "presence_penalty",
          "frequency_penalty", "seed", "user", "stream_options")


def _err(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def prompt_of(data: JSON) -> str:
    prompt = data.get("prompt")
    if prompt is None:
        raise _err("Missing required parameter: 'prompt'.", "prompt",
                   "missing_required_parameter")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        raise _err("Send one prompt per request: batches of prompts are not supported.",
                   "prompt")
    if not isinstance(prompt, str):
        raise _err("'prompt' must be a string (token arrays are not supported).", "prompt",
                   "invalid_type")
    return prompt


def suffix_of(data: JSON) -> str | None:
    suffix = data.get("suffix")
    if suffix is None or suffix == "":
        return None
    if not isinstance(suffix, str):
        raise _err("'suffix' must be a string.", "suffix", "invalid_type")
    return suffix


def parse(data: JSON) -> JSON:
    """The canonical chat body of a legacy request (``suffix`` is the caller's to route)."""
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise _err("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    chat: JSON = {"model": model, "messages": [{"role": "user", "content": prompt_of(data)}]}
    for name in PASSED:
        if data.get(name) is not None:
            chat[name] = data[name]
    stream = data.get("stream")
    if stream is not None:
        if not isinstance(stream, bool):
            raise _err("Invalid type for 'stream': expected a boolean.", "stream",
                       "invalid_type")
        if stream:
            chat["stream"] = True
    return chat


def _choice(text: str, index: int, finish: Any) -> JSON:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish}


def render(resp: JSON, requested_model: str, request_id: str, echo: str = "") -> JSON:
    choices = []
    for i, c in enumerate(resp.get("choices") or []):
        msg = (c.get("message") or {}) if isinstance(c, dict) else {}
        content = msg.get("content")
        content = content if isinstance(content, str) else ""
        choices.append(_choice(echo + content, c.get("index", i) if isinstance(c, dict) else i,
                               c.get("finish_reason") if isinstance(c, dict) else None))
    out: JSON = {"id": "cmpl-" + request_id, "object": "text_completion",
                 "created": resp.get("created") or int(time.time()), "model": requested_model,
                 "choices": choices}
    if isinstance(resp.get("usage"), dict):
        out["usage"] = resp["usage"]
    return out


def usage_payload(u: Usage) -> JSON:
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}


class CompletionsFramer:
    """``text_completion`` chunks, the usage chunk when asked for, then ``[DONE]``."""

    __slots__ = ("created", "echo", "id", "include_usage", "model")

    def __init__(self, requested_model: str, request_id: str, include_usage: bool,
                 echo: str = "") -> None:
        self.model, self.id, self.include_usage = requested_model, "cmpl-" + request_id, \
            include_usage
        self.created = int(time.time())
        self.echo = echo

    def _frame(self, choices: list[JSON], usage: JSON | None = None) -> bytes:
        payload: JSON = {"id": self.id, "object": "text_completion", "created": self.created,
                         "model": self.model, "choices": choices}
        if usage is not None:
            payload["usage"] = usage
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    def chunk(self, chunk: JSON) -> bytes | None:
        choices = []
        for i, c in enumerate(chunk.get("choices") or ()):
            if not isinstance(c, dict):
                continue
            delta = c.get("delta") or {}
            text = delta.get("content")
            text = text if isinstance(text, str) else ""
            if self.echo:
                text, self.echo = self.echo + text, ""
            if text or c.get("finish_reason"):
                choices.append(_choice(text, c.get("index", i), c.get("finish_reason")))
        return self._frame(choices) if choices else None

    def end(self, usage: Usage) -> bytes:
        if self.include_usage:
            return self._frame([], usage_payload(usage)) + DONE_FRAME
        return DONE_FRAME

    def fail(self, err: GatewayError, usage: Usage) -> bytes:
        return sse_error(err) + DONE_FRAME


class Completions:
    """The protocol object of one legacy request (``echo`` needs the prompt)."""

    name = "completions"
    operation = "complete"

    def __init__(self, echo: str = "") -> None:
        self.echo = echo

    def parse(self, data: JSON) -> JSON:
        return parse(data)

    def render(self, resp: JSON, call: Any) -> JSON:
        return render(resp, call.requested_model, call.request_id, self.echo)

    def framer(self, call: Any) -> CompletionsFramer:
        return CompletionsFramer(call.requested_model, call.request_id, call.include_usage,
                                 self.echo)

    def error_body(self, err: GatewayError) -> bytes:
        return err.body()

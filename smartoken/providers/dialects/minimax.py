"""MiniMax: asked for ``reasoning_split: true`` so thinking comes apart from the answer, as
``reasoning_details`` (a list of ``{"text": ...}``), which is given to the client as OpenAI-style
``reasoning_content``. A ``<think>…</think>`` block left inside ``content`` (a model that ignores
the flag) is split out the same way in non-streaming answers.

MiniMax needs the whole assistant message back across tool-call turns, thinking included: an
assistant turn that comes back with ``reasoning_content`` (what the client was given) is sent
as ``reasoning_details`` again."""

from __future__ import annotations

from typing import Any

from smartoken.providers.base import JSON
from smartoken.providers.dialects.base import Dialect

OPEN, CLOSE = "<think>", "</think>"


def _details_text(details: Any) -> str | None:
    if not isinstance(details, list):
        return None
    return "".join(d.get("text") or "" for d in details if isinstance(d, dict))


def _details(message: Any) -> Any:
    """An assistant message with ``reasoning_content`` as MiniMax's ``reasoning_details``."""
    if not (isinstance(message, dict) and message.get("role") == "assistant"
            and "reasoning_content" in message):
        return message
    out = {k: v for k, v in message.items() if k != "reasoning_content"}
    text = message["reasoning_content"]
    if isinstance(text, str) and text and "reasoning_details" not in out:
        out["reasoning_details"] = [{"type": "reasoning.text", "id": "reasoning-text-1",
                                     "format": "MiniMax-response-v1", "index": 0,
                                     "text": text}]
    return out


class MiniMaxDialect(Dialect):
    name = "minimax"

    def prepare(self, body: JSON, stream: bool) -> None:
        super().prepare(body, stream)
        body.setdefault("reasoning_split", True)
        messages = body.get("messages")
        if isinstance(messages, list) and any(
                isinstance(m, dict) and m.get("role") == "assistant" and "reasoning_content" in m
                for m in messages):
            body["messages"] = [_details(m) for m in messages]

    @staticmethod
    def _move(part: JSON, split_tags: bool) -> None:
        text = _details_text(part.pop("reasoning_details", None))
        if text:
            part["reasoning_content"] = (part.get("reasoning_content") or "") + text
        content = part.get("content")
        if split_tags and isinstance(content, str) and content.lstrip().startswith(OPEN):
            head, sep, rest = content.partition(CLOSE)
            if sep:
                thought = head.lstrip()[len(OPEN):].strip()
                part["reasoning_content"] = (part.get("reasoning_content") or "") + thought
                part["content"] = rest.lstrip("\n")

    def normalize_response(self, resp: JSON) -> JSON:
        for choice in resp.get("choices") or ():
            msg = choice.get("message")
            if isinstance(msg, dict):
                self._move(msg, True)
        return resp

    def normalize_chunk(self, chunk: JSON) -> JSON:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            if isinstance(delta, dict) and "reasoning_details" in delta:
                self._move(delta, False)
        return super().normalize_chunk(chunk)

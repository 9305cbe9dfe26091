"""Secrets split across stream chunks (issue 12, item 6).

The provider scrubs every configured secret (its keys, its extra header values) from each
upstream event. An upstream that echoes a secret as streamed text can split it across two
events (``"...upstream-sec"`` then ``"ret-KEY..."``): neither event holds it, the client's
concatenation does. ``StreamScrubber`` scrubs the concatenation instead: for each text field of
each choice (``content``, ``reasoning_content``, ``refusal``, a tool call's ``arguments``) it
holds back the end of the text when that end could begin a secret (the longest suffix that is a
proper prefix of one), and puts it in front of the field's next text before scrubbing again.
What is held back goes out with the choice's next text, its ``finish_reason`` chunk, or, if the
stream ends first, one last chunk (``flush``). Text that cannot begin a secret passes at once,
so ordinary streams are not delayed; what the client assembles equals the whole text scrubbed
in one piece. ``EventScrubber`` does the same on Anthropic's stream events (``text``,
``thinking``, ``partial_json`` deltas per content block, flushed before the block's
``content_block_stop``), before they are translated or passed through to a Messages client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smartoken.providers.base import JSON

TEXT_FIELDS = ("content", "reasoning_content", "refusal")
Slot = tuple[int, str, int]  # (choice index, field, tool call index or -1)


class _Carry:
    def __init__(self, secrets: Sequence[bytes]) -> None:
        texts = {s.decode("utf-8", "replace") for s in secrets}
        self._secrets = sorted((s for s in texts if s), key=len, reverse=True)
        self._carry: dict[Slot, str] = {}

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def _held(self, text: str) -> int:
        """Length of the longest end of ``text`` that could begin a secret (a proper prefix of
        one). Only the places where a secret's first character occurs in the last
        ``len(secret) - 1`` characters are tried: C-speed ``find``, not a slice per length."""
        size, best = len(text), 0
        for secret in self._secrets:
            first, end = secret[0], size - best  # only starts that would beat ``best``
            i = text.find(first, max(0, size - len(secret) + 1), end)
            while i != -1:
                if secret.startswith(text[i:]):  # the earliest start is the longest end
                    best = size - i
                    break
                i = text.find(first, i + 1, end)
        return best

    def _field(self, holder: dict[str, Any], name: str, slot: Slot, final: bool) -> None:
        text = holder.get(name)
        carry = self._carry
        if text.__class__ is not str:
            if not final or slot not in carry:
                return
            text = ""
        elif carry and slot in carry:
            text = carry.pop(slot) + text
        full = self.scrub(text)
        if not final and (n := self._held(full)):
            carry[slot] = full[-n:]
            full = full[:-n]
        holder[name] = full


class StreamScrubber(_Carry):
    def __init__(self, secrets: Sequence[bytes]) -> None:
        super().__init__(secrets)
        self._last: JSON | None = None

    def feed(self, chunk: JSON) -> JSON:
        """Scrub one ``chat.completion.chunk`` in place (and return it)."""
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return chunk
        self._last = chunk
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            index = index if isinstance(index, int) else 0
            final = choice.get("finish_reason") is not None
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                if not (final and any(s[0] == index for s in self._carry)):
                    continue
                delta = choice["delta"] = {}
            for name in TEXT_FIELDS:
                self._field(delta, name, (index, name, -1), final)
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                fn = call.get("function") if isinstance(call, dict) else None
                position = call.get("index", 0) if isinstance(call, dict) else 0
                if isinstance(fn, dict) and isinstance(position, int):
                    self._field(fn, "arguments", (index, "arguments", position), final)
            if final:  # arguments held back for a call this chunk does not name
                for slot in [s for s in self._carry if s[0] == index]:
                    rest = self._carry.pop(slot)
                    if slot[1] == "arguments":
                        calls = delta.setdefault("tool_calls", [])
                        if isinstance(calls, list):
                            calls.append({"index": slot[2], "function": {"arguments": rest}})
        return chunk

    def flush(self) -> JSON | None:
        """What is still held back when the stream ends without a ``finish_reason``: one last
        chunk carrying it, or None."""
        if not self._carry:
            return None
        deltas: dict[int, dict[str, Any]] = {}
        for (index, name, position), rest in sorted(self._carry.items()):
            delta = deltas.setdefault(index, {})
            if name == "arguments":
                delta.setdefault("tool_calls", []).append(
                    {"index": position, "function": {"arguments": rest}})
            else:
                delta[name] = rest
        self._carry.clear()
        last = self._last or {}
        head: JSON = {k: last[k] for k in ("id", "object", "created", "model") if k in last}
        return {**head, "choices": [{"index": i, "delta": d, "finish_reason": None}
                                    for i, d in sorted(deltas.items())]}


DELTA_FIELDS = {"text_delta": "text", "thinking_delta": "thinking",
                "input_json_delta": "partial_json"}


class EventScrubber(_Carry):
    """Anthropic stream events: ``feed`` returns the events to pass on, in order (a held-back
    end goes out as one more delta just before its block's ``content_block_stop``, or before
    ``message_stop`` for a block never stopped)."""

    def feed(self, event: JSON) -> list[JSON]:
        kind = event.get("type")
        index = event.get("index")
        if kind == "content_block_delta" and isinstance(index, int):
            delta = event.get("delta")
            kind = delta.get("type") if isinstance(delta, dict) else None
            name = DELTA_FIELDS.get(kind) if isinstance(kind, str) else None
            if name is not None and isinstance(delta, dict):
                self._field(delta, name, (index, name, -1), False)
            return [event]
        if kind == "content_block_stop" and isinstance(index, int):
            return [*self._flush(lambda i: i == index), event]
        if kind == "message_stop":
            return [*self._flush(lambda _i: True), event]
        return [event]

    def _flush(self, which: Any) -> list[JSON]:
        out: list[JSON] = []
        for slot in sorted(s for s in self._carry if which(s[0])):
            rest = self._carry.pop(slot)
            kind = next(k for k, v in DELTA_FIELDS.items() if v == slot[1])
            out.append({"type": "content_block_delta", "index": slot[0],
                        "delta": {"type": kind, slot[1]: rest}})
        return out

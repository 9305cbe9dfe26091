"""The shape of what enters from an upstream, checked once where it enters: the fields the relay
and the client protocols read (choices, messages and deltas, their text and tool calls) have the
types OpenAI documents. An answer of another shape (an upstream's bug, or an attack) is a
protocol ``UpstreamError``: a 502, or a stream's error event after what was delivered, never a
crash of the relay, a reset connection or a 500. Fields nobody reads pass as they are."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from smartoken.providers.base import JSON, UpstreamError

log = logging.getLogger("smartoken.providers")

TEXT_FIELDS = ("content", "reasoning_content", "reasoning", "refusal")


def _bad(name: str, what: str) -> UpstreamError:
    return UpstreamError(f"{name}: malformed answer ({what})", kind="protocol")


def unreadable(name: str, exc: Exception) -> UpstreamError:
    """Our code could not read what the upstream sent (``exc``, logged in full): a protocol
    error of the upstream, as any other answer of an undocumented shape."""
    log.warning("%s: an answer could not be read", name, exc_info=exc)
    return UpstreamError(f"{name}: malformed answer ({type(exc).__name__})", kind="protocol")


@contextlib.contextmanager
def reading(name: str) -> Iterator[None]:
    """Around the code that reads an upstream's answer: what it raises, other than an
    ``UpstreamError``, becomes ``unreadable``."""
    try:
        yield
    except UpstreamError:
        raise
    except Exception as exc:
        raise unreadable(name, exc) from None


def _text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _index(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _tool_calls(calls: Any) -> bool:
    if calls is None:
        return True
    if not isinstance(calls, list):
        return False
    for call in calls:
        if not isinstance(call, dict) or not _index(call.get("index")):
            return False
        fn = call.get("function")
        if fn is not None and (not isinstance(fn, dict) or not _text(fn.get("name"))
                               or not _text(fn.get("arguments"))):
            return False
    return True


def _part(part: Any) -> bool:
    """A message or a delta: a dict whose text fields are text and tool calls are calls."""
    if part is None:
        return True
    return isinstance(part, dict) and all(_text(part.get(f)) for f in TEXT_FIELDS) and \
        _tool_calls(part.get("tool_calls"))


def _choices(obj: JSON, name: str, part: str) -> None:
    choices = obj.get("choices")
    if choices is None:
        return
    if not isinstance(choices, list):
        raise _bad(name, "choices is not a list")
    for choice in choices:
        if not isinstance(choice, dict):
            raise _bad(name, "a choice is not an object")
        if not _part(choice.get(part)):
            raise _bad(name, f"a choice's {part} is not a {part}")
        if not _index(choice.get("index")) or not _text(choice.get("finish_reason")):
            raise _bad(name, "a choice's index or finish_reason")


def chunk(obj: JSON, name: str) -> JSON:
    """A ``chat.completion.chunk`` (after the dialect's normalisation); returns it."""
    _choices(obj, name, "delta")
    return obj


def completion(obj: Any, name: str) -> JSON:
    """A ``chat.completion`` (after the dialect's normalisation); returns it."""
    if not isinstance(obj, dict):
        raise _bad(name, "not an object")
    if not isinstance(obj.get("choices"), list):
        raise _bad(name, "no choices")
    _choices(obj, name, "message")
    return obj


def embeddings(obj: Any, name: str) -> JSON:
    """An embeddings list: ``data`` a list of objects whose ``embedding`` is a list of numbers
    or a base64 string (``encoding_format: base64``); returns it."""
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise _bad(name, "no data list")
    for item in obj["data"]:
        if not isinstance(item, dict) or not isinstance(item.get("embedding"), list | str) \
                or not _index(item.get("index")):
            raise _bad(name, "an embedding is not an embedding")
    return obj

"""Offline token counting with a tiktoken encoding (o200k_base).

tiktoken downloads its BPE files on first use; this machine and many deployments cannot. The
ranks ship inside the ``bpe-openai`` wheel, so the encoding is built from that file and works
with no network. Counts are an estimate for non-OpenAI families (their tokenizers differ); the
gateway prefers the provider's own usage and marks records estimated when it had to count.
"""

from __future__ import annotations

import base64
import gzip
import threading
from collections.abc import Iterable
from importlib import resources
from typing import Any

import orjson
import tiktoken

ENCODING = "o200k_base"
# Per-message framing overhead of the chat format (OpenAI's published counting recipe).
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING = 3
IMAGE_TOKENS = 765
PARALLEL_THRESHOLD = 256 * 1024  # characters; above this, count in chunks on threads
CHUNK = 128 * 1024

_lock = threading.Lock()
_encoding: tiktoken.Encoding | None = None


def _load() -> tiktoken.Encoding:
    import bpe_openai

    data = resources.files("bpe_openai").joinpath(f"data/{ENCODING}.tiktoken.gz").read_bytes()
    ranks = {
        base64.b64decode(tok): int(rank)
        for tok, rank in (line.split() for line in gzip.decompress(data).splitlines() if line)
    }
    pat = bpe_openai.get_encoding(ENCODING)._pat_str
    return tiktoken.Encoding(
        ENCODING, pat_str=pat, mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    )


def encoding() -> tiktoken.Encoding:
    global _encoding
    if _encoding is None:
        with _lock:
            if _encoding is None:
                _encoding = _load()
    return _encoding


def count_text(text: str) -> int:
    if not text:
        return 0
    enc = encoding()
    if len(text) < PARALLEL_THRESHOLD:
        return len(enc.encode_ordinary(text))
    parts = _split(text)
    return sum(len(t) for t in enc.encode_ordinary_batch(parts, num_threads=2))


def _split(text: str) -> list[str]:
    """Split on whitespace near chunk boundaries so pieces tokenise like the whole."""
    parts, start, n = [], 0, len(text)
    while start < n:
        end = min(start + CHUNK, n)
        if end < n:
            cut = text.rfind(" ", start + CHUNK // 2, end)
            if cut > start:
                end = cut
        parts.append(text[start:end])
        start = end
    return parts


def _texts(content: Any) -> Iterable[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    yield part["text"]
            elif isinstance(part, str):
                yield part


def _images(content: Any) -> int:
    if not isinstance(content, list):
        return 0
    return sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")


def message_pieces(messages: list[dict[str, Any]],
                   tools: Any = None) -> tuple[list[str], int]:
    """The texts of a chat request that are tokenised, and the framing tokens around them."""
    pieces: list[str] = []
    framing = REPLY_PRIMING
    for m in messages:
        framing += TOKENS_PER_MESSAGE + IMAGE_TOKENS * _images(m.get("content"))
        pieces.extend(_texts(m.get("content")))
        for field in ("name", "role", "reasoning_content"):
            value = m.get(field)
            if isinstance(value, str):
                pieces.append(value)
        calls = m.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    pieces.append(str(fn.get("name", "")))
                    pieces.append(str(fn.get("arguments", "")))
    if tools:
        pieces.append(orjson.dumps(tools).decode())
    return pieces, framing


def count_messages(messages: list[dict[str, Any]], tools: Any = None) -> int:
    """Estimate prompt tokens of a chat request, framing included."""
    pieces, framing = message_pieces(messages, tools)
    return framing + count_text("\n".join(pieces))

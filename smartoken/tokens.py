"""Offline token counting with a tiktoken encoding (o200k_base).

tiktoken downloads its BPE files on first use; this machine and many deployments cannot. The
ranks ship inside the ``bpe-openai`` wheel, so the encoding is built from that file and works
with no network. Counts are an estimate for non-OpenAI families (their tokenizers differ); the
gateway prefers the provider's own usage and marks records estimated when it had to count.
"""

from __future__ import annotations

import base64
import ctypes
import gc
import gzip
import importlib.util
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from tiktoken import _tiktoken

from smartoken import media

ENCODING = "o200k_base"
# Per-message framing overhead of the chat format (OpenAI's published counting recipe).
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING = 3
PARALLEL_THRESHOLD = 256 * 1024  # characters; above this, count in chunks on threads
CHUNK = 128 * 1024
# o200k_base's pre-tokenisation pattern, as tiktoken_ext.openai_public defines it.
PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
SPECIAL_TOKENS = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}

_lock = threading.Lock()
_encoding: Encoding | None = None


class Encoding:
    """o200k_base held only in tiktoken's Rust core.

    ``tiktoken.Encoding`` also keeps the 200,000 ranks as a Python dict (~38 MiB per process)
    and the ``bpe_openai`` package, where the ranks ship, builds a second tokenizer on import
    (~70 MiB): neither is needed to count, so only the core is kept.
    """

    def __init__(self, core: Any) -> None:
        self._core = core

    def encode_ordinary(self, text: str) -> list[int]:
        try:
            return self._core.encode_ordinary(text)  # type: ignore[no-any-return]
        except UnicodeEncodeError:  # lone surrogates: encode as tiktoken does
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return self._core.encode_ordinary(text)  # type: ignore[no-any-return]

    def encode_ordinary_batch(self, texts: Sequence[str], num_threads: int = 2) -> list[list[int]]:
        with ThreadPoolExecutor(num_threads) as pool:
            return list(pool.map(self.encode_ordinary, texts))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(self._core.decode_bytes(list(ids))).decode("utf-8", "replace")


def ranks_file() -> Path:
    """The gzipped ranks inside the ``bpe-openai`` wheel, found without importing it."""
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the bpe-openai package (o200k_base ranks) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / f"{ENCODING}.tiktoken.gz"


def _ranks() -> dict[bytes, int]:
    lines = gzip.decompress(ranks_file().read_bytes()).splitlines()
    return {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in lines
                                                                if line)}


def _release_heap() -> None:
    """Hand the freed build-time garbage (the ranks dict, the decompressed file) back to the OS:
    glibc keeps freed small blocks in its arenas otherwise, and they would stay resident."""
    gc.collect()
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
    if trim is not None:
        trim(0)


def _load() -> Encoding:
    core = _tiktoken.CoreBPE(_ranks(), SPECIAL_TOKENS, PATTERN)
    _release_heap()
    return Encoding(core)


def encoding() -> Encoding:
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
                for field in ("text", "refusal"):
                    if isinstance(part.get(field), str):
                        yield part[field]
            elif isinstance(part, str):
                yield part


def message_pieces(messages: list[dict[str, Any]],
                   tools: Any = None) -> tuple[list[str], int]:
    """The texts of a chat request that are tokenised, and the framing tokens around them."""
    pieces: list[str] = []
    framing = REPLY_PRIMING
    for i, m in enumerate(messages):
        # images and audio are sized by their formulas; a part that cannot be is a 400
        framing += TOKENS_PER_MESSAGE + media.content_tokens(m.get("content"),
                                                             f"messages[{i}]")
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

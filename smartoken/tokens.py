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
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson
from tiktoken import _tiktoken  # type: ignore[attr-defined]  # compiled module, no stubs

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
IN_FLIGHT = 4  # chunks counted or queued at once
_NONE: frozenset[str] = frozenset()
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

    def count(self, text: str) -> int:
        """Tokens of ``text``; the ids are read as a buffer of u32, no list of ints is made."""
        try:
            buf = self._core.encode_to_tiktoken_buffer(text, _NONE)
        except UnicodeEncodeError:
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            buf = self._core.encode_to_tiktoken_buffer(text, _NONE)
        return memoryview(buf).nbytes // 4

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
    return count_joined([text]) if text else 0


def count_joined(pieces: Sequence[str], sep: str = "\n") -> int:
    """Tokens of ``sep.join(pieces)``, counted without building it.

    Short texts are encoded whole. Longer ones are read in place in slices of about ``CHUNK``
    characters cut at a space (so they tokenise like the whole), at most ``IN_FLIGHT`` at a
    time on two threads: a 30 MB prompt never exists twice, and its ~6M token ids are never
    held at once (as a Python list they took ~220 MB).
    """
    text = _Joined(pieces, sep)
    enc = encoding()
    if text.n < PARALLEL_THRESHOLD:
        return enc.count(text.slice(0, text.n))
    total = 0
    with ThreadPoolExecutor(2) as pool:
        pending: deque[Future[int]] = deque()
        for chunk in _chunks(text):
            pending.append(pool.submit(enc.count, chunk))
            if len(pending) >= IN_FLIGHT:
                total += pending.popleft().result()
        return total + sum(f.result() for f in pending)


class _Joined:
    """``sep.join(pieces)`` read by slices, never materialised."""

    def __init__(self, pieces: Sequence[str], sep: str) -> None:
        self.pieces, self.sep = pieces, sep
        self.starts = list(accumulate((len(p) + len(sep) for p in pieces[:-1]), initial=0))
        self.n = (self.starts[-1] + len(pieces[-1])) if pieces else 0

    def slice(self, a: int, b: int) -> str:
        if not self.pieces or a >= b:
            return ""
        k = bisect_right(self.starts, a) - 1
        out: list[str] = []
        while a < b and k < len(self.pieces):
            s = self.starts[k]
            piece = self.pieces[k]
            end = s + len(piece)
            if a < end:
                out.append(piece[a - s:min(b, end) - s])
            if b <= end or k + 1 == len(self.pieces):
                break
            nxt = end + len(self.sep)
            out.append(self.sep[max(a, end) - end:min(b, nxt) - end])
            a = nxt
            k += 1
        return "".join(out)


def _cut(window: str) -> int:
    """The last space in the second half of ``window`` that follows a non-space: o200k's
    pattern ends the piece before it at that character and starts the next at the space, so
    the two sides tokenise exactly as they do in the whole. 0: none."""
    cut = len(window)
    while (cut := window.rfind(" ", CHUNK // 2, cut)) > 0:
        if not window[cut - 1].isspace():
            return cut
    return 0


def _chunks(text: _Joined) -> Iterator[str]:
    """Slices of about ``CHUNK`` characters. A window with no clean cut (a long run of CJK
    characters or of spaces) is cut at ``CHUNK``, a token or two off, rather than encoded whole:
    tiktoken's merge of one huge piece takes ~16 bytes per byte of it."""
    start, n = 0, text.n
    while start < n:
        end = min(start + CHUNK, n)
        window = text.slice(start, end)
        if end < n:
            cut = _cut(window)
            if cut > 0:
                window, end = window[:cut], start + cut
        yield window
        start = end


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
    return framing + count_joined(pieces)

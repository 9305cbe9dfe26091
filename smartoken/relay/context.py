"""Context fit: size the prompt cheaply, check it against the model's window before any
upstream call, pick an ``auto`` variant or a context-window fallback.

Counting 8 MB of text exactly with tiktoken costs about a second of CPU here, far above the
gateway's budget, so sizing is layered:

1. Small prompts (under ``SAMPLE_FROM`` bytes, nearly every request) are counted exactly.
2. Large prompts get an exact upper bound (o200k is byte-level BPE: a token is at least one
   UTF-8 byte, so tokens <= bytes) and an estimate: a few evenly spaced windows are tokenised
   and their tokens-per-byte ratio scaled to the whole text.
3. A large prompt is accepted on ``min(bound, estimate * (1 + MARGIN))``. Only when that does not
   fit (a rejection, or a prompt within the margin of the limit) is the whole text counted
   exactly, on a worker thread so the event loop keeps serving other requests; a rejection
   always names the exact count.

Counts are an estimate of the upstream's own tokenizer anyway (families differ); the upstream's
reported usage is what gets billed.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple

from smartoken import tokens
from smartoken.catalog.model import ModelSpec
from smartoken.errors import ContextLengthExceeded

if TYPE_CHECKING:
    from smartoken.state import AppState

SAMPLE_FROM = 256 * 1024  # bytes of prompt text; below this, count exactly
SAMPLES = 24
SAMPLE_BYTES = 4 * 1024
MARGIN_NUM, MARGIN_DEN = 6, 100  # accept on estimate + 6 %


class PromptSize(NamedTuple):
    tokens: int  # exact count, or the estimate
    upper: int  # what the fit check uses: exact, or a safe upper estimate
    exact: bool


def _utf8_len(s: str) -> int:
    if s.isascii():
        return len(s)
    step = 1 << 20  # encoded a slice at a time: a 30 MB prompt is not copied whole
    return sum(len(s[i:i + step].encode("utf-8", "surrogatepass"))
               for i in range(0, len(s), step))


def _estimate(pieces: list[str], nbytes: int) -> int:
    """Tokens of the pieces scaled from evenly spaced windows (cut at spaces), read in place:
    the 8 MB text is never joined or copied."""
    offsets = list(accumulate(len(p) for p in pieces))
    n = offsets[-1]
    sampled_tokens = sampled_bytes = 0
    enc = tokens.encoding()
    for i in range(SAMPLES):
        pos = i * n // SAMPLES
        k = bisect_right(offsets, pos)
        piece = pieces[k]
        start = pos - (offsets[k] - len(piece))
        end = min(len(piece), start + SAMPLE_BYTES)
        s = piece.find(" ", start, start + 64)
        e = piece.rfind(" ", end - 64, end)
        window = piece[s if s >= 0 else start:e if e > start else end]
        sampled_tokens += len(enc.encode_ordinary(window))
        sampled_bytes += _utf8_len(window)
    if not sampled_bytes:
        return nbytes
    return -(-nbytes * sampled_tokens // sampled_bytes)


def size_prompt(messages: list[dict[str, Any]], tools: Any = None) -> PromptSize:
    pieces, framing = tokens.message_pieces(messages, tools)
    nchars = sum(map(len, pieces)) + len(pieces)
    # a character is 1-4 UTF-8 bytes: most prompts are known to be small without encoding
    nbytes = nchars if nchars * 4 < SAMPLE_FROM else sum(map(_utf8_len, pieces)) + len(pieces)
    if nbytes < SAMPLE_FROM:
        exact = framing + tokens.count_text("\n".join(pieces))
        return PromptSize(exact, exact, True)
    est = _estimate(pieces, nbytes)
    upper = min(nbytes, est + est * MARGIN_NUM // MARGIN_DEN)
    return PromptSize(framing + est, framing + upper, False)


async def count_exact(messages: list[dict[str, Any]], tools: Any = None) -> int:
    return await asyncio.to_thread(tokens.count_messages, messages, tools)


def fit_context(state: AppState, spec: ModelSpec, prompt: int, wanted: int | None) -> ModelSpec:
    """Check the prompt fits; for ``auto`` ids pick the smallest variant that fits; otherwise
    fall back to the first of ``context_fallbacks`` that holds it."""
    need = prompt + (wanted or 0)
    if spec.auto_variants:
        variants = [state.catalog.models[v] for v in spec.auto_variants]
        for v in sorted(variants, key=lambda m: m.context_window):
            if need <= v.context_window and state.router.has_routes(v.id):
                return v
        largest = max(variants, key=lambda m: m.context_window)
        raise ContextLengthExceeded(
            f"This request needs {need} tokens ({prompt} in the messages"
            f"{f' + {wanted} requested output' if wanted else ''}); the largest variant of "
            f"'{spec.id}' ('{largest.id}') holds {largest.context_window}.", param="messages")
    if need > spec.context_window:
        for fb_id in spec.context_fallbacks:
            fb = state.catalog.models.get(fb_id)
            if fb is not None and need <= fb.context_window and state.router.has_routes(fb.id):
                return fb
        raise ContextLengthExceeded(
            f"This model's maximum context length is {spec.context_window} tokens. However, "
            f"your messages resulted in {prompt} tokens"
            f"{f' and {wanted} requested output tokens' if wanted else ''}.", param="messages")
    return spec


async def fit(state: AppState, spec: ModelSpec, data: dict[str, Any],
              wanted: int | None) -> tuple[ModelSpec, int]:
    """The model that will serve the request and the prompt's token count."""
    size = size_prompt(data["messages"], data.get("tools"))
    if size.exact:
        return fit_context(state, spec, size.tokens, wanted), size.tokens
    try:
        return fit_context(state, spec, size.upper, wanted), size.upper
    except ContextLengthExceeded:
        exact = await count_exact(data["messages"], data.get("tools"))
        return fit_context(state, spec, exact, wanted), exact

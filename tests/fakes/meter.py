"""The fake upstream's meter: the usage a vendor would bill for what it actually received.

Honest by default, and independent of the gateway's own sizing (``smartoken/media.py``):

* text: the o200k tokenizer over the text it received, 3 tokens a message and 3 to prime the
  reply (OpenAI's recipe; the families' tokenizers differ, the gateway reserves headroom);
* images: Qwen-VL's billing rule (help.aliyun.com, "图像Token = h_bar * w_bar / 28² + 2"): each
  side rounded to a multiple of 28, the area scaled down under ``max_pixels`` (16,384 tokens)
  and up to at least 4 tokens; an http URL (the fake does not fetch) as Qwen's default cap,
  1,280 tokens + 2;
* audio: Qwen-Omni's rule, 25 tokens a second (minimum 1 s), the duration read from a WAV
  header, or from the bytes at ``audio_bytes_per_s`` (default 16,000: 128 kbit/s) otherwise;
* output: the limit is read only from the field(s) the dialect documents (``OUTPUT_FIELDS``);
  without one the model writes ``default_output`` tokens (or its whole ``content``).
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import orjson

from smartoken import tokens

JSON = dict[str, Any]
# The output limit fields each vendor documents. OpenAI honours both (max_tokens deprecated);
# DeepSeek, Moonshot, Qwen (compatible mode), GLM, Doubao, MiniMax, Hunyuan, ERNIE: max_tokens.
OUTPUT_FIELDS: dict[str, tuple[str, ...]] = {"openai": ("max_completion_tokens", "max_tokens")}
DEFAULT_FIELDS = ("max_tokens",)
QWEN_FACTOR, QWEN_MIN, QWEN_MAX = 28, 4, 16_384
URL_IMAGE = 1_280 + 2
AUDIO_PER_S = 25


def output_limit(dialect: str, body: JSON, honours: Any = None) -> int | None:
    fields = tuple(honours) if honours else OUTPUT_FIELDS.get(dialect, DEFAULT_FIELDS)
    for f in fields:
        value = body.get(f)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _decode(url_or_data: str) -> bytes:
    payload = url_or_data.partition(",")[2] if url_or_data.startswith("data:") else url_or_data
    try:
        return base64.b64decode(payload)
    except ValueError:
        return b""


def _image_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", data[6:10])
    return None


def image_tokens(part: JSON) -> int:
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str) or not url.startswith("data:"):
        return URL_IMAGE
    size = _image_size(_decode(url))
    if size is None:
        return URL_IMAGE
    w, h = size
    f = QWEN_FACTOR
    wb, hb = max(f, round(w / f) * f), max(f, round(h / f) * f)
    if wb * hb > QWEN_MAX * f * f:
        beta = math.sqrt(w * h / (QWEN_MAX * f * f))
        wb, hb = math.floor(w / beta / f) * f, math.floor(h / beta / f) * f
    elif wb * hb < QWEN_MIN * f * f:
        beta = math.sqrt(QWEN_MIN * f * f / (w * h))
        wb, hb = math.ceil(w * beta / f) * f, math.ceil(h * beta / f) * f
    return wb * hb // (f * f) + 2


def audio_tokens(part: JSON, bytes_per_s: int) -> int:
    spec = part.get("input_audio")
    data = _decode(str(spec.get("data", ""))) if isinstance(spec, dict) else b""
    rate = bytes_per_s
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE" and data[12:16] == b"fmt ":
        rate = int.from_bytes(data[28:32], "little") or bytes_per_s
    seconds = max(1.0, len(data) / rate)
    return math.ceil(seconds * AUDIO_PER_S)


def prompt_tokens(body: JSON, scenario: JSON) -> int:
    texts: list[str] = []
    media = 3
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        media += 3
        content = m.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for p in content:
                if not isinstance(p, dict):
                    continue
                kind = p.get("type")
                if isinstance(p.get("text"), str):
                    texts.append(p["text"])
                elif kind == "image_url":
                    media += image_tokens(p)
                elif kind == "input_audio":
                    media += audio_tokens(p, int(scenario.get("audio_bytes_per_s", 16_000)))
        for call in m.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                texts.append(str(fn.get("arguments", "")))
    if body.get("tools"):
        texts.append(orjson.dumps(body["tools"]).decode())
    return media + tokens.count_text("\n".join(texts))


def completion_tokens(dialect: str, body: JSON, scenario: JSON, text: str) -> int:
    """What the model writes: its natural length, cut at the limit it honours."""
    natural = scenario.get("default_output")
    written = int(natural) if natural is not None else max(1, tokens.count_text(text))
    limit = output_limit(dialect, body, scenario.get("honours"))
    return written if limit is None else min(written, limit)


def usage(dialect: str, body: JSON, scenario: JSON, text: str) -> JSON:
    """The usage the fake reports and bills; ``overbill: k`` makes it lie by a factor k."""
    k = int(scenario.get("overbill", 1))
    u = {"prompt_tokens": prompt_tokens(body, scenario) * k,
         "completion_tokens": completion_tokens(dialect, body, scenario, text) * k}
    u["total_tokens"] = u["prompt_tokens"] + u["completion_tokens"]
    return u

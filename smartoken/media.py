"""Sizing the prompt parts that are not text: the tokens an upstream may bill for them.

A reservation must bound what the upstream bills, so every content part is sized by the
dearest documented formula of the families we route to, bounded by its bytes when it cannot be
measured, or refused with a 400 before anything is reserved:

* ``image_url``: a data URL's pixel size is read from its header (PNG, GIF, JPEG, WebP) and
  sized as the largest of Qwen-VL's patch grid (one token per 28x28 pixels, 4 to 16,384 tokens,
  plus 2), OpenAI's high-detail tiles (85 + 170 per 512-pixel tile) and Anthropic's area rule
  (width x height / 750, at most 1,600). An image the gateway
  cannot measure (an http URL, an unknown format) is reserved at the grid's maximum, 16,386.
* ``input_audio``: WAV's duration comes from its header; any other format is bounded by its
  bytes at 6 kbit/s (the lowest bit rate of common speech codecs). A second is sized at 32
  tokens (Gemini's documented rate; Qwen-Omni bills 25, OpenAI about 10), one second
  at least.
* ``text`` and ``refusal``: counted by the tokenizer (``tokens.message_pieces``).
* ``file``: a ``file_id`` is replaced by the file's text before sizing (``files.expand``);
  inline ``file_data`` cannot be bounded (a PDF page is billed as an image and text) and is
  refused: upload the file and reference it.
* video parts and any other type: refused, naming the part.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any

from smartoken.errors import InvalidRequest

GRID = 28  # pixels per Qwen-VL token side
GRID_MIN, GRID_MAX, GRID_EXTRA = 4, 16_384, 2
IMAGE_UNKNOWN = GRID_MAX + GRID_EXTRA
AREA_MAX = 1_600
AUDIO_TOKENS_PER_S = 32
AUDIO_MIN_BYTES_PER_S = 750  # 6 kbit/s
HEADER_CHARS = 256 * 1024  # base64 characters read to find an image's size
TEXT_TYPES = frozenset({"text", "refusal"})


def _unsupported(where: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"Unsupported content part '{where}': {what}", param=where,
                          code="unsupported_content")


def grid_tokens(width: int, height: int) -> int:
    """Qwen-VL's patch grid, rounded up (never below what the vendor bills)."""
    n = -(-width // GRID) * -(-height // GRID)
    return min(max(n, GRID_MIN), GRID_MAX) + GRID_EXTRA


def tile_tokens(width: int, height: int) -> int:
    """OpenAI's high-detail formula: fit in 2048x2048, shortest side to 768, 512-pixel tiles."""
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        w, h = w * 2048 / max(w, h), h * 2048 / max(w, h)
    if min(w, h) > 768:
        w, h = w * 768 / min(w, h), h * 768 / min(w, h)
    return 85 + 170 * -(-int(w) // 512) * -(-int(h) // 512)


def area_tokens(width: int, height: int) -> int:
    """Anthropic's rule: width x height / 750, the image first scaled to about 1.15 megapixels
    (at most about 1,600 tokens)."""
    return min(-(-width * height // 750), AREA_MAX)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, JPEG or WebP header, else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        kind = data[12:16]
        if kind == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return w, h
        if kind == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if kind == b"VP8L" and len(data) >= 25:
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return None
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


def _data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 payload) of a ``data:…;base64,`` URL, else None."""
    if not url.startswith("data:"):
        return None
    head, sep, payload = url.partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[5:-7], payload


def _b64_prefix(payload: str, chars: int) -> bytes:
    cut = payload[:chars]
    cut = cut[:len(cut) - len(cut) % 4]
    try:
        return base64.b64decode(cut, validate=False)
    except (binascii.Error, ValueError):
        return b""


def _b64_bytes(payload: str) -> int:
    """Decoded size of a base64 payload, without decoding it."""
    n = len(payload.rstrip("="))
    return n * 3 // 4


def image_tokens(part: dict[str, Any], where: str) -> int:
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str):
        raise _unsupported(where, "'image_url.url' must be a string.")
    data = _data_url(url)
    if data is None:
        return IMAGE_UNKNOWN  # not measurable here: the most the grid bills
    size = image_size(_b64_prefix(data[1], HEADER_CHARS))
    if size is None or not all(size):
        return IMAGE_UNKNOWN
    return max(grid_tokens(*size), tile_tokens(*size), area_tokens(*size))


def wav_byte_rate(head: bytes) -> int | None:
    """Bytes per second of a WAV file, from its ``fmt`` chunk."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    i = 12
    while i + 8 <= len(head):
        chunk, size = head[i:i + 4], int.from_bytes(head[i + 4:i + 8], "little")
        if chunk == b"fmt " and i + 20 <= len(head):
            rate = int.from_bytes(head[i + 16:i + 20], "little")
            return rate or None
        i += 8 + size + (size & 1)
    return None


def audio_tokens(part: dict[str, Any], where: str) -> int:
    spec = part.get("input_audio")
    payload = spec.get("data") if isinstance(spec, dict) else None
    if not isinstance(payload, str):
        raise _unsupported(where, "'input_audio.data' must be a base64 string.")
    nbytes = _b64_bytes(payload)
    # Every byte sent is audio the upstream may decode: a WAV lasts its bytes over its byte
    # rate, never longer than its bytes at the lowest codec rate.
    rate = max(wav_byte_rate(_b64_prefix(payload, 4096)) or 0, AUDIO_MIN_BYTES_PER_S)
    return max(AUDIO_TOKENS_PER_S, -(-nbytes * AUDIO_TOKENS_PER_S // rate))  # 1 s at least


def part_tokens(part: dict[str, Any], where: str) -> int:
    """Tokens of one non-text part (text parts are 0 here: the tokenizer counts them)."""
    kind = part.get("type")
    if kind in TEXT_TYPES:
        return 0
    if kind == "image_url":
        return image_tokens(part, where)
    if kind == "input_audio":
        return audio_tokens(part, where)
    if kind == "file":
        raise _unsupported(where, "inline 'file_data' cannot be sized before it is sent; "
                           "upload the file (POST /v1/files) and send its 'file_id'.")
    raise _unsupported(where, f"type '{kind}' cannot be sized, so its cost cannot be "
                       "bounded; send text, image_url or input_audio parts.")


def content_tokens(content: Any, where: str = "messages") -> int:
    """Tokens of the non-text parts of one message's content."""
    if not isinstance(content, list):
        return 0
    return sum(part_tokens(p, f"{where}.content[{j}]") for j, p in enumerate(content)
               if isinstance(p, dict))

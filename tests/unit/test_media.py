"""Issue 12 item 1: the gateway's sizing of image and audio parts never falls below what the
fake upstream's vendor formulas bill (tests/fakes/meter.py), for any size."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartoken import media, tokens
from smartoken.errors import InvalidRequest
from tests.fakes import meter


def _png(w: int, h: int) -> str:
    head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", w, h)
    return "data:image/png;base64," + base64.b64encode(head + b"\x08\x02\x00\x00\x00").decode()


def _gif(w: int, h: int) -> str:
    return "data:image/gif;base64," + base64.b64encode(
        b"GIF89a" + struct.pack("<HH", w, h) + b"\x00" * 8).decode()


def _wav(nbytes: int, rate: int) -> str:
    head = b"RIFF" + struct.pack("<I", 36 + nbytes) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate, 1, 8) + b"data" + struct.pack("<I", nbytes)
    return base64.b64encode(head + b"\x80" * nbytes).decode()


def _image(url: str) -> dict[str, object]:
    return {"type": "image_url", "image_url": {"url": url}}


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 20_000), st.integers(1, 20_000), st.booleans())
def test_an_image_is_never_sized_below_the_vendor_bill(w: int, h: int, gif: bool) -> None:
    part = _image(_gif(min(w, 65535), min(h, 65535)) if gif else _png(w, h))
    assert media.part_tokens(part, "p") >= meter.image_tokens(part)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 400_000), st.sampled_from([4000, 8000, 16000, 32000, 96000]))
def test_audio_is_never_sized_below_the_vendor_bill(nbytes: int, rate: int) -> None:
    wav = {"type": "input_audio", "input_audio": {"data": _wav(nbytes, rate), "format": "wav"}}
    assert media.part_tokens(wav, "p") >= meter.audio_tokens(wav, 16_000)
    # Not WAV: bounded by bytes at the lowest codec rate, above any bit rate the vendor assumes.
    mp3 = {"type": "input_audio", "input_audio": {
        "data": base64.b64encode(b"\xff\xfb" + b"\x00" * nbytes).decode(), "format": "mp3"}}
    assert media.part_tokens(mp3, "p") >= meter.audio_tokens(mp3, media.AUDIO_MIN_BYTES_PER_S)


def test_known_sizes_and_unmeasurable_images() -> None:
    assert media.part_tokens(_image(_png(1024, 1024)), "p") == 1399  # Anthropic's 1024²/750
    assert media.part_tokens(_image(_png(4000, 4000)), "p") == 16_386  # the grid's maximum
    assert media.part_tokens(_image(_png(10, 10)), "p") == max(4 + 2, 85 + 170)
    assert media.part_tokens(_image("https://example.com/a.png"), "p") == 16_386
    assert media.part_tokens(_image("data:image/png;base64,!!!!"), "p") == 16_386
    one_s = {"type": "input_audio", "input_audio": {"data": _wav(8000, 8000)}}
    assert media.part_tokens(one_s, "p") == 33  # 8,044 bytes at 8,000 a second, 32 a second


@pytest.mark.parametrize("part", [
    {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}},
    {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
    {"type": "input_audio", "input_audio": {}},
    {"type": "image_url", "image_url": {"url": 5}},
    {"type": "hologram"},
])
def test_unsizable_parts_are_a_400_naming_the_part(part: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest) as err:
        tokens.count_messages([{"role": "user", "content": [{"type": "text", "text": "a"},
                                                             part]}])
    assert err.value.param == "messages[0].content[1]" and err.value.code == "unsupported_content"

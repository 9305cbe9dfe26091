"""Issue 12 item 6: a configured secret split across stream chunks is scrubbed from what the
client assembles (smartoken/providers/stream_scrub.py)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smartoken.providers.stream_scrub import EventScrubber, StreamScrubber

SECRETS = [b"upstream-secret-KEY-7f3a91c2", b"tenant-secret-hdr-5d20e8b4",
           "密钥-9f8e7d".encode()]
TEXT = ("headers: {'Authorization': 'Bearer upstream-secret-KEY-7f3a91c2', 'X-Tenant-Token': "
        "'tenant-secret-hdr-5d20e8b4'} upstream-secret-KEY-7f3a91 (cut) tenant 密钥-9f8e7d u"
        "upstream-secret-KEY-7f3a91c2upstream-secret-KEY-7f3a91c2 done")


def _chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def _split(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 40)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def _assembled(chunks: list[dict[str, Any]], field: str = "content") -> str:
    out = []
    for c in chunks:
        for choice in c["choices"]:
            delta = choice.get("delta") or {}
            if field == "arguments":
                for call in delta.get("tool_calls") or []:
                    out.append(call["function"].get("arguments") or "")
            else:
                out.append(delta.get(field) or "")
    return "".join(out)


def test_any_split_assembles_to_the_whole_text_scrubbed() -> None:
    whole = StreamScrubber(SECRETS).scrub(TEXT)
    assert all(s.decode() not in whole for s in SECRETS) and whole.count("***") == 5
    rng = random.Random(12)
    for trial in range(300):
        s = StreamScrubber(SECRETS)
        parts = _split(TEXT, rng)
        finish = trial % 2 == 0  # the last text comes with finish_reason, or [DONE] flushes
        out = [s.feed(_chunk({"content": p})) for p in parts]
        if finish:
            out.append(s.feed(_chunk({}, "stop")))
        elif (rest := s.flush()) is not None:
            out.append(rest)
        assert _assembled(out) == whole, parts
        assert s.flush() is None


def test_one_character_chunks_never_show_a_secret() -> None:
    s = StreamScrubber(SECRETS)
    out = [s.feed(_chunk({"content": ch})) for ch in TEXT] + [s.feed(_chunk({}, "length"))]
    got = _assembled(out)
    assert got == s.scrub(TEXT)
    for secret in SECRETS:
        assert secret.decode() not in got


def test_text_that_cannot_begin_a_secret_is_not_held_back() -> None:
    s = StreamScrubber(SECRETS)
    assert s.feed(_chunk({"content": "hello world"}))["choices"][0]["delta"]["content"] == \
        "hello world"
    held = s.feed(_chunk({"content": "key: upstream-sec"}))
    assert held["choices"][0]["delta"]["content"] == "key: "
    assert s.feed(_chunk({"content": "tion"}))["choices"][0]["delta"]["content"] == \
        "upstream-section"


def test_fields_choices_and_tool_arguments_are_kept_apart() -> None:
    s = StreamScrubber(SECRETS)
    out = [
        s.feed(_chunk({"reasoning_content": "a tenant-secret-"}, index=0)),
        s.feed(_chunk({"content": "b upstream-secret-K"}, index=1)),
        s.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"k": "tenant-'}}]})),
        s.feed(_chunk({"reasoning_content": "hdr-5d20e8b4 x"}, index=0)),
        s.feed(_chunk({"content": "EY-7f3a91c2 y"}, index=1)),
        s.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'secret-hdr-5d'}}]})),
        s.feed(_chunk({}, "tool_calls")),
        s.feed(_chunk({}, "stop", index=1)),
    ]
    assert _assembled(out, "reasoning_content") == "a *** x"
    assert _assembled([c for c in out if c["choices"][0]["index"] == 1]) == "b *** y"
    # Arguments end held back ("tenant-secret-hdr-5d" could still become the secret): the
    # finish_reason chunk of choice 0 carries them.
    assert _assembled(out, "arguments") == '{"k": "tenant-secret-hdr-5d'
    assert s.flush() is None


def test_hostile_shapes_pass_unchanged() -> None:
    s = StreamScrubber(SECRETS)
    for chunk in ({"choices": None}, {"choices": [1, None, "x"]}, {"usage": {}},
                  {"choices": [{"index": [1], "delta": {"content": 5}}]},
                  {"choices": [{"delta": {"tool_calls": [None, {"function": "x"},
                                                         {"index": "a", "function": {}}]}}]}):
        assert s.feed(chunk) is chunk
    assert s.flush() is None


def _delta(index: int, kind: str, text: str) -> dict[str, Any]:
    field = {"text_delta": "text", "thinking_delta": "thinking",
             "input_json_delta": "partial_json"}[kind]
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, field: text}}


def test_anthropic_events_assemble_to_the_whole_text_scrubbed() -> None:
    whole = StreamScrubber(SECRETS).scrub(TEXT)
    rng = random.Random(7)
    for trial in range(200):
        s = EventScrubber(SECRETS)
        out: list[dict[str, Any]] = []
        for part in _split(TEXT, rng):
            out += s.feed(_delta(0, "thinking_delta", part))
            out += s.feed(_delta(1, "text_delta", part))
            out += s.feed({"type": "ping"})
        out += s.feed({"type": "content_block_stop", "index": 0})
        if trial % 2:  # block 1 never stopped: message_stop flushes it
            out += s.feed({"type": "content_block_stop", "index": 1})
        out += s.feed({"type": "message_stop"})
        thinking = "".join(e["delta"]["thinking"] for e in out
                           if e.get("type") == "content_block_delta" and e["index"] == 0)
        text = "".join(e["delta"]["text"] for e in out
                       if e.get("type") == "content_block_delta" and e["index"] == 1)
        assert thinking == text == whole
        stops = [i for i, e in enumerate(out) if e["type"] == "content_block_stop"]
        deltas0 = [i for i, e in enumerate(out) if e.get("index") == 0 and "delta" in e]
        assert max(deltas0) < stops[0]  # the held-back end precedes its block's stop
        assert out[-1] == {"type": "message_stop"}


def test_anthropic_tool_json_and_odd_events() -> None:
    s = EventScrubber(SECRETS)
    out = s.feed(_delta(2, "input_json_delta", '{"k": "upstream-secret-KEY'))
    assert out[0]["delta"]["partial_json"] == '{"k": "'
    out += s.feed(_delta(2, "input_json_delta", '-7f3a91c2"}'))
    out += s.feed({"type": "content_block_stop", "index": 2})
    assert "".join(e["delta"]["partial_json"] for e in out if "delta" in e) == '{"k": "***"}'
    for odd in ({"type": "content_block_delta", "index": "x", "delta": {"type": "text_delta"}},
                {"type": "content_block_delta", "index": 0, "delta": [1]},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta",
                                                                     "signature": "upstream-"}},
                {"type": "content_block_stop"}, {"no": "type"}):
        assert s.feed(odd) == [odd]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet="ab密-", min_size=1, max_size=6), min_size=1, max_size=3),
       st.text(alphabet="ab密-x", max_size=12))
def test_held_back_end_is_the_longest_end_that_begins_a_secret(
        secrets: list[str], text: str) -> None:
    """``_held`` (find-based) against its definition: the longest proper prefix of any secret
    that ``text`` ends with."""
    carry = StreamScrubber([s.encode() for s in secrets])
    prefixes = {s[:n] for s in secrets for n in range(1, len(s))}
    expected = max((n for n in range(1, len(text) + 1) if text[-n:] in prefixes), default=0)
    assert carry._held(text) == expected

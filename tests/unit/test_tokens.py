"""The tokenizer: exact o200k counts from tiktoken's Rust core alone, in a small footprint."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from smartoken import tokens
from tests.harness import ROOT

TEXTS = [
    "Say something about foxes and dogs, briefly.",
    "你好，世界！这是一个测试。日本語のテキストも。한국어 문장.",
    "def f(x):\n    return x ** 2  # square\n\n\n\tindented\r\nCRLF",
    "numbers 1234567890 3.14159 -42 1e10 0x1F",
    "emoji 🦊🐕‍🦺 and accents: café naïve Ünïcödé ÀÉÎÕÜ",
    "   leading and trailing spaces   ",
    "I'm sure they'll've DON'T WON'T it's",
    "lone surrogate \ud800 in the middle",
    "",
    "x" * 5000,
    " ".join(f"word{i}" for i in range(3000)),
]


def test_counts_match_an_independent_tokenizer() -> None:
    bpe_openai = pytest.importorskip("bpe_openai")
    ref = bpe_openai.get_encoding(tokens.ENCODING)
    assert ref._pat_str == tokens.PATTERN
    enc = tokens.encoding()
    for text in TEXTS:
        clean = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        assert enc.encode_ordinary(text) == list(ref.encode_ordinary(clean)), text[:40]
        assert tokens.count_text(text) == len(ref.encode_ordinary(clean))


def test_batch_and_decode() -> None:
    enc = tokens.encoding()
    ids = enc.encode_ordinary(TEXTS[1])
    assert enc.decode(ids) == TEXTS[1]
    assert enc.decode(ids[:3]) != ""
    assert enc.encode_ordinary_batch(TEXTS[:3]) == [enc.encode_ordinary(t) for t in TEXTS[:3]]


_PROBE = """
import sys
def rss():
    for line in open('/proc/self/smaps_rollup'):
        if line.startswith('Rss:'):
            return int(line.split()[1]) * 1024
from smartoken import tokens
before = rss()
assert tokens.count_text('hello world') == 2
print(rss() - before, 'bpe_openai' in sys.modules)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_loaded_tokenizer_is_small() -> None:
    """Issue 16: it added ~200 MiB to every worker (a Python dict of the ranks kept by
    tiktoken.Encoding, plus bpe_openai's own tokenizer built to read one attribute)."""
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=60).stdout.split()
    grown, imported = int(out[0]), out[1] == "True"
    assert not imported
    assert grown < 64 * 1024 * 1024, f"tokenizer added {grown / 2**20:.0f} MiB"


def test_long_texts_count_exactly_in_slices() -> None:
    """Above PARALLEL_THRESHOLD a text is counted in slices read in place (never joined or
    held as a list of ids); cuts fall only where o200k's pieces break, so the count is the
    whole text's. Cutting before any space (the old rule) was off after runs of spaces."""
    rng = random.Random(7)
    words = ["foo", "bar", "  ", "\n", "1234567", "é", "你好", "🦊", " ", "x" * 50, "don't",
             "...", "\t", "  \n "]
    enc = tokens.encoding()
    for _ in range(6):
        pieces = ["".join(rng.choice(words) + rng.choice([" ", "\n", "", "  "])
                          for _ in range(rng.randint(40_000, 70_000)))
                  for _ in range(rng.randint(2, 4))]
        whole = "\n".join(pieces)
        assert len(whole) > tokens.PARALLEL_THRESHOLD
        assert tokens.count_joined(pieces) == len(enc.encode_ordinary(whole))
        assert tokens.count_text(whole) == len(enc.encode_ordinary(whole))

"""The rpm/tpm token buckets, with a hand-driven clock."""

from __future__ import annotations

import pytest

from smartoken.auth.keys import KeyContext
from smartoken.budget.ratelimit import RateLimiter
from smartoken.errors import RateLimited


def _key(rpm: int | None = None, tpm: int | None = None, key_id: int = 1) -> KeyContext:
    return KeyContext(key_id, 1, "a", "user", "sk-st-x", "k", None, None, None, rpm, tpm, None,
                      False)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_rpm_bursts_then_refills_at_its_rate() -> None:
    clock = Clock()
    rl = RateLimiter(clock)
    key = _key(rpm=60)
    for _ in range(60):
        rl.admit(key, 10)
    with pytest.raises(RateLimited) as exc:
        rl.admit(key, 10)
    assert exc.value.headers["retry-after"] == "1" and exc.value.param == "rpm"
    clock.t += 1.0
    rl.admit(key, 10)  # one more per second
    with pytest.raises(RateLimited):
        rl.admit(key, 10)
    clock.t += 3600
    for _ in range(60):  # refills to the minute's allowance, never beyond
        rl.admit(key, 10)
    with pytest.raises(RateLimited):
        rl.admit(key, 10)


def test_tpm_counts_prompt_then_completion_and_waits_out_debt() -> None:
    clock = Clock()
    rl = RateLimiter(clock)
    key = _key(tpm=600)  # 10 tokens per second
    rl.admit(key, 100)
    rl.charge(key, 700)  # the answer was long: the bucket is 200 in debt
    with pytest.raises(RateLimited) as exc:
        rl.admit(key, 50)
    assert exc.value.param == "tpm" and exc.value.headers["retry-after"] == "25"
    clock.t += 25
    rl.admit(key, 50)
    # A prompt larger than the whole minute is admitted when the bucket is full.
    clock.t += 3600
    rl.admit(key, 5000)
    clock.t += 60
    with pytest.raises(RateLimited):
        rl.admit(key, 1)


def test_a_refusal_takes_nothing_and_keys_are_separate() -> None:
    clock = Clock()
    rl = RateLimiter(clock)
    key = _key(rpm=2, tpm=100)
    rl.admit(key, 60)
    with pytest.raises(RateLimited):
        rl.admit(key, 60)  # tpm refuses: the request bucket keeps its token
    rl.admit(key, 40)
    rl.admit(_key(rpm=1, key_id=2), 1000)
    rl.admit(_key(), 10**9)  # no limits at all

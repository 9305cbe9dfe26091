"""Requests-per-minute and tokens-per-minute limits per key: two token buckets in memory.

Each bucket holds up to one minute's allowance and refills continuously (``rpm / 60`` requests
and ``tpm / 60`` tokens per second), so a key may burst its whole minute and then proceeds at
its rate. A request is admitted when the request bucket holds one request and the token bucket
holds its prompt tokens (or is full, for a prompt larger than the whole minute); admission takes
both, and the completion tokens are taken when the request is settled, which may leave the token
bucket in debt: the next request waits until it is paid back. A refusal is a 429
``rate_limit_exceeded`` with ``Retry-After`` (seconds until the bucket holds enough).

The check runs without an ``await`` (atomic under asyncio) and without I/O. Limits are per
process; with several workers each enforces the key's limit on its own share.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from smartoken.auth.keys import KeyContext
from smartoken.errors import RateLimited


class _Bucket:
    __slots__ = ("at", "level")

    def __init__(self, level: float, at: float) -> None:
        self.level = level
        self.at = at

    def refill(self, capacity: int, now: float) -> float:
        if now > self.at:
            self.level = min(float(capacity), self.level + (now - self.at) * capacity / 60.0)
            self.at = now
        elif self.level > capacity:
            self.level = float(capacity)  # the limit was lowered
        return self.level


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._requests: dict[int, _Bucket] = {}
        self._tokens: dict[int, _Bucket] = {}

    def _bucket(self, table: dict[int, _Bucket], key_id: int, capacity: int,
                now: float) -> _Bucket:
        bucket = table.get(key_id)
        if bucket is None:
            bucket = table[key_id] = _Bucket(float(capacity), now)
        else:
            bucket.refill(capacity, now)
        return bucket

    def admit(self, key: KeyContext, prompt_tokens: int) -> None:
        """Take one request and ``prompt_tokens`` from the key's buckets, or raise 429."""
        rpm, tpm = key.rpm, key.tpm
        if not rpm and not tpm:
            return
        now = self._clock()
        req = tok = None
        if rpm:
            req = self._bucket(self._requests, key.key_id, rpm, now)
            if req.level < 1.0:
                raise RateLimited(
                    f"Rate limit reached: this key allows {rpm} requests per minute.",
                    retry_after=(1.0 - req.level) * 60.0 / rpm, param="rpm")
        if tpm:
            tok = self._bucket(self._tokens, key.key_id, tpm, now)
            need = float(min(prompt_tokens, tpm))
            if tok.level < need or tok.level <= 0.0:
                raise RateLimited(
                    f"Rate limit reached: this key allows {tpm} tokens per minute.",
                    retry_after=(max(need, 1.0) - tok.level) * 60.0 / tpm, param="tpm")
        if req is not None:
            req.level -= 1.0
        if tok is not None:
            tok.level -= prompt_tokens

    def charge(self, key: KeyContext, completion_tokens: int) -> None:
        """Take the tokens a request produced (called when it is settled)."""
        if key.tpm and completion_tokens > 0:
            bucket = self._bucket(self._tokens, key.key_id, key.tpm, self._clock())
            bucket.level -= completion_tokens

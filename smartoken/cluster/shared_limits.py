"""Limits that hold across replicas (issue 12, item 17): the keys' rpm/tpm buckets, the
per-address failed-authentication limit and the console's sign-in throttle, counted in Redis
when it is configured, one atomic Lua script per check, on Redis's clock (``TIME``), so that
three replicas behind a load balancer enforce a key's 60 requests a minute together, not 60
each.

Each shared limiter wraps the per-process one (budget/ratelimit.py, api/edge.py,
console/throttle.py) with the same semantics, and uses it alone when there is no Redis. While
Redis is unreachable, rpm/tpm follow the budgets' policy (``SMARTOKEN_REDIS_DOWN``): ``closed``
refuses a rate-limited key's requests with 503 ``limit_store_unavailable``, ``open`` counts in
this process meanwhile. The two brakes on guessing (failed authentications per address, failed
sign-ins) always count in this process while Redis is down: they are checked before anything
else, and refusing then would turn a Redis outage into an outage of every route.

Keys (prefix P): ``P:rl:r:<key id>`` / ``P:rl:t:<key id>`` hashes {level, at} (request and
token buckets, expiring after two idle minutes); ``P:af:<address>`` failed-authentication count
of the current window (expires with it); ``P:si:name:<name>`` / ``P:si:addr:<address>`` sorted
sets of failed sign-in instants (expire with the window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import TYPE_CHECKING, Any

from smartoken.api.edge import AuthFailures
from smartoken.auth.keys import KeyContext
from smartoken.budget.ratelimit import RateLimiter
from smartoken.console.throttle import LoginThrottle
from smartoken.errors import GatewayError, RateLimited

log = logging.getLogger("smartoken.limits")
if TYPE_CHECKING:
    from redis.asyncio import Redis


def redis_errors() -> tuple[type[BaseException], ...]:
    """``redis_pool.REDIS_ERRORS``, imported (with redis-py) only where Redis is configured
    (~8 MiB of RSS in a worker without it: issue 16)."""
    from smartoken.cluster.redis_pool import REDIS_ERRORS

    return REDIS_ERRORS

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: request bucket, token bucket;  ARGV: rpm tpm prompt_tokens
# Both buckets refill continuously (capacity per minute) and are taken together, or neither.
ADMIT = _NOW + """
local function level(key, cap)
  if cap <= 0 then return nil end
  local b = redis.call('HMGET', key, 'level', 'at')
  local lv, at = tonumber(b[1]), tonumber(b[2])
  if lv == nil then return cap end
  if now > at then lv = math.min(cap, lv + (now - at) * cap / 60) end
  if lv > cap then lv = cap end
  return lv
end
local rpm, tpm, prompt = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local req, tok = level(KEYS[1], rpm), level(KEYS[2], tpm)
if req ~= nil and req < 1 then
  return {'rpm', tostring((1 - req) * 60 / rpm)}
end
if tok ~= nil then
  local need = math.min(prompt, tpm)
  if tok < need or tok <= 0 then
    return {'tpm', tostring((math.max(need, 1) - tok) * 60 / tpm)}
  end
end
if req ~= nil then
  redis.call('HSET', KEYS[1], 'level', tostring(req - 1), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[1], 120)
end
if tok ~= nil then
  redis.call('HSET', KEYS[2], 'level', tostring(tok - prompt), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[2], 120)
end
return {'ok', '0'}
"""

# KEYS: token bucket;  ARGV: tpm tokens — the completion tokens, taken when a request settles
CHARGE = _NOW + """
local cap, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'level', 'at')
local lv, at = tonumber(b[1]) or cap, tonumber(b[2]) or now
if now > at then lv = math.min(cap, lv + (now - at) * cap / 60) end
redis.call('HSET', KEYS[1], 'level', tostring(lv - n), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return 1
"""

# KEYS: count;  ARGV: limit — seconds until the address may try again (0: not blocked)
AUTH_BLOCKED = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < tonumber(ARGV[1]) then return '0' end
local ms = redis.call('PTTL', KEYS[1])
if ms <= 0 then return '0' end
return tostring(ms / 1000)
"""

# KEYS: count;  ARGV: window (seconds) — a fixed window that starts at the first failure
AUTH_FAILED = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], math.floor(tonumber(ARGV[1]) * 1000)) end
return n
"""

# KEYS: by name, by address;  ARGV: window per_name per_address — seconds to wait (0: allowed)
SIGNIN_WAIT = _NOW + """
local window = tonumber(ARGV[1])
local wait = 0
for i, limit in ipairs({tonumber(ARGV[2]), tonumber(ARGV[3])}) do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local n = redis.call('ZCARD', KEYS[i])
  if n >= limit then
    local at = redis.call('ZRANGE', KEYS[i], n - limit, n - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(at[2]) + window - now)
  end
end
return tostring(wait)
"""

# KEYS: by name, by address;  ARGV: window member
SIGNIN_FAILED = _NOW + """
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[2])
  redis.call('EXPIRE', KEYS[i], math.ceil(tonumber(ARGV[1])) + 1)
end
return 1
"""


class LimitStoreUnavailable(GatewayError):
    """Redis is unreachable and the policy is to fail closed."""

    status, type, code = 503, "server_error", "limit_store_unavailable"

    def __init__(self) -> None:
        super().__init__("The shared limit store (Redis) is unreachable, so this request's "
                         "limits cannot be checked; retry shortly.",
                         headers={"retry-after": "1"})


class _Shared:
    def __init__(self, redis: Redis | None, prefix: str, fail_open: bool) -> None:
        self.redis, self.prefix, self.fail_open = redis, prefix, fail_open
        self._errors = redis_errors() if redis is not None else (OSError,)
        self._tasks: set[asyncio.Task[Any]] = set()

    def _down(self, exc: BaseException) -> None:
        """Redis did not answer: fall back to this process's counters, or refuse."""
        log.warning("redis unreachable for limits (%s): %s", type(exc).__name__,
                    "counting in this process" if self.fail_open else "refusing")
        if not self.fail_open:
            raise LimitStoreUnavailable() from None

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class SharedRateLimiter(_Shared):
    """rpm/tpm per key (see budget/ratelimit.py for the buckets' rules)."""

    def __init__(self, local: RateLimiter | None = None, redis: Redis | None = None,
                 prefix: str = "st:", fail_open: bool = False) -> None:
        super().__init__(redis, prefix, fail_open)
        self.local = local or RateLimiter()
        if redis is not None:
            self._admit = redis.register_script(ADMIT)
            self._charge = redis.register_script(CHARGE)

    def _keys(self, key_id: int) -> list[str]:
        return [f"{self.prefix}rl:r:{key_id}", f"{self.prefix}rl:t:{key_id}"]

    async def admit(self, key: KeyContext, prompt_tokens: int) -> None:
        if not key.rpm and not key.tpm:
            return
        if self.redis is None:
            self.local.admit(key, prompt_tokens)
            return
        try:
            verdict, wait = await self._admit(keys=self._keys(key.key_id), args=[
                key.rpm or 0, key.tpm or 0, prompt_tokens])
        except self._errors as exc:
            self._down(exc)
            self.local.admit(key, prompt_tokens)
            return
        verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        if verdict == "rpm":
            raise RateLimited(f"Rate limit reached: this key allows {key.rpm} requests per "
                              "minute.", retry_after=float(wait), param="rpm")
        if verdict == "tpm":
            raise RateLimited(f"Rate limit reached: this key allows {key.tpm} tokens per "
                              "minute.", retry_after=float(wait), param="tpm")

    def charge(self, key: KeyContext, completion_tokens: int) -> None:
        """Never awaits (runs when a request settles): the Redis update runs in a task."""
        if not key.tpm or completion_tokens <= 0:
            return
        if self.redis is None:
            self.local.charge(key, completion_tokens)
            return
        self._background(self._charge_remote(key, completion_tokens))

    async def _charge_remote(self, key: KeyContext, completion_tokens: int) -> None:
        try:
            await self._charge(keys=self._keys(key.key_id)[1:],
                               args=[key.tpm or 0, completion_tokens])
        except self._errors:
            self.local.charge(key, completion_tokens)


class SharedAuthFailures(_Shared):
    """Failed authentications per client address in fixed windows (see api/edge.py)."""

    def __init__(self, local: AuthFailures, redis: Redis | None = None, prefix: str = "st:",
                 fail_open: bool = False) -> None:
        super().__init__(redis, prefix, fail_open)
        self.local = local
        if redis is not None:
            self._blocked = redis.register_script(AUTH_BLOCKED)
            self._failed = redis.register_script(AUTH_FAILED)

    async def blocked_for(self, client: str) -> float:
        if self.redis is None:
            return self.local.blocked_for(client)
        try:
            return float(await self._blocked(keys=[f"{self.prefix}af:{client}"],
                                             args=[self.local.limit]))
        except self._errors:
            return self.local.blocked_for(client)

    async def failed(self, client: str) -> None:
        if self.redis is not None:
            try:
                await self._failed(keys=[f"{self.prefix}af:{client}"], args=[self.local.window])
                return
            except self._errors:
                pass  # counted here: a failure is never forgotten
        self.local.failed(client)


class SharedLoginThrottle(_Shared):
    """Failed console sign-ins per name and per address (see console/throttle.py)."""

    def __init__(self, local: LoginThrottle, redis: Redis | None = None, prefix: str = "st:",
                 fail_open: bool = False) -> None:
        super().__init__(redis, prefix, fail_open)
        self.local = local
        if redis is not None:
            self._wait = redis.register_script(SIGNIN_WAIT)
            self._failed = redis.register_script(SIGNIN_FAILED)

    def _keys(self, name: str, address: str) -> list[str]:
        return [f"{self.prefix}si:{k}" for k in self.local._keys(name, address)]

    async def retry_after(self, name: str, address: str) -> float | None:
        if self.redis is None:
            return self.local.retry_after(name, address)
        t = self.local
        try:
            wait = float(await self._wait(keys=self._keys(name, address),
                                          args=[t.window, t.per_name, t.per_address]))
        except self._errors:
            return self.local.retry_after(name, address)
        return wait if wait > 0 else None

    async def failed(self, name: str, address: str) -> None:
        if self.redis is not None:
            try:
                await self._failed(keys=self._keys(name, address),
                                   args=[self.local.window, secrets.token_hex(8)])
                return
            except self._errors:
                pass
        self.local.failed(name, address)

    async def succeeded(self, name: str) -> None:
        self.local.succeeded(name)
        if self.redis is not None:
            with contextlib.suppress(*self._errors):
                await self.redis.delete(self._keys(name, "")[0])

"""API keys: generation, hashing, and the in-process cache the hot path authenticates against.

A key is ``sk-st-`` followed by 40 URL-safe random characters (240 bits). Only its SHA-256 is
stored; its first 12 characters are kept as a visible prefix. Lookups go through a small
in-process cache; revocation clears the entry in this process at once and in others through
the key-change poller (``AppState``), so it takes effect on the next request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.errors import AuthenticationFailed
from smartoken.store import repo

KEY_PREFIX = "sk-st-"
VISIBLE = 12
CACHE_TTL = 30.0
NEGATIVE_TTL = 2.0
NEGATIVE_MAX = 10_000


def generate_key() -> tuple[str, str, str]:
    """Return (secret, visible prefix, hash)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(30)
    return secret, secret[:VISIBLE], hash_key(secret)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyContext:
    key_id: int
    account_id: int
    account_name: str
    role: str
    prefix: str
    name: str
    families: frozenset[str] | None
    daily_budget: int | None
    monthly_budget: int | None
    rpm: int | None
    tpm: int | None
    expires_at: float | None
    revoked: bool
    admin: bool = False  # created as an admin key
    account_disabled: bool = False  # the account was disabled by an admin

    @property
    def restricted(self) -> bool:
        """Limited by families, budgets, rate limits or expiry: what its owner meant to bound."""
        return self.families is not None or self.daily_budget is not None or \
            self.monthly_budget is not None or bool(self.rpm) or bool(self.tpm) or \
            self.expires_at is not None

    @property
    def is_admin(self) -> bool:
        """Admin authority is explicit: a key created as an admin key, of an account that still
        has the admin role, and never a restricted one."""
        return self.admin and self.role == "admin" and not self.restricted


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def context_from_row(row: dict[str, Any]) -> KeyContext:
    fams = row.get("families")
    return KeyContext(
        key_id=int(row["id"]),
        account_id=int(row["account_id"]),
        account_name=str(row.get("account_name", "")),
        role=str(row.get("role", "user")),
        prefix=str(row["prefix"]),
        name=str(row["name"]),
        families=frozenset(orjson.loads(fams)) if fams else None,
        daily_budget=row["daily_budget_micro"],
        monthly_budget=row["monthly_budget_micro"],
        rpm=row["rpm"],
        tpm=row["tpm"],
        expires_at=_epoch(row["expires_at"]),
        revoked=row["revoked_at"] is not None,
        admin=bool(row.get("admin", False)),
        account_disabled=row.get("account_disabled_at") is not None,
    )


class KeyCache:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._hits: dict[str, tuple[KeyContext, float]] = {}
        self._misses: dict[str, float] = {}

    def clear(self) -> None:
        self._hits.clear()
        self._misses.clear()

    async def authenticate(self, authorization: str | None) -> KeyContext:
        if not authorization:
            raise AuthenticationFailed(
                "Missing API key: send 'Authorization: Bearer sk-st-...'."
            )
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise AuthenticationFailed("Malformed Authorization header: expected 'Bearer <key>'.")
        digest = hash_key(secret)
        now = time.monotonic()
        hit = self._hits.get(digest)
        if hit is not None and now - hit[1] < CACHE_TTL:
            ctx = hit[0]
        else:
            miss = self._misses.get(digest)
            if miss is not None and now - miss < NEGATIVE_TTL:
                raise AuthenticationFailed("Incorrect API key provided.")
            row = await repo.key_by_hash(self._engine, digest)
            if row is None:
                if len(self._misses) >= NEGATIVE_MAX:
                    self._misses.clear()
                self._misses[digest] = now
                raise AuthenticationFailed("Incorrect API key provided.")
            ctx = context_from_row(row)
            self._hits[digest] = (ctx, now)
        if ctx.revoked:
            raise AuthenticationFailed("This API key has been revoked.", code="key_revoked")
        if ctx.account_disabled:
            raise AuthenticationFailed("This key's account is disabled.",
                                       code="account_disabled")
        if ctx.expires_at is not None and time.time() >= ctx.expires_at:
            raise AuthenticationFailed("This API key has expired.", code="key_expired")
        return ctx

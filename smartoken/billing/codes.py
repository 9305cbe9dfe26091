"""Redemption codes: generated, normalised and hashed here; spent through ``redeem``.

A code reads ``ST-XXXXX-XXXXX-XXXXX-XXXXX``: 20 characters drawn from 30 that cannot be
mistaken for one another (no 0/O, 1/I/L, U), about 98 bits of randomness, so guessing one is
hopeless even without the brake. A code is compared case-insensitively, and spaces and hyphens
anywhere are ignored (it may be read aloud, pasted with a line break, typed in lower case).
Only its SHA-256 is stored, like an API key's: the database cannot hand a code out again, and
the admin sees it once, when the batch is created.

Every way a redemption can fail (malformed, unknown, already redeemed, revoked, expired) gets
the same answer, so that an attacker learns nothing from trying; failed attempts are counted
per account in the database (every replica sees them), and after ``FAILURES_ALLOWED`` in
``FAILURE_WINDOW`` the account is refused with 429 until the oldest leaves the window.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.errors import InvalidRequest, RateLimited
from smartoken.state import AppState
from smartoken.store import codes as store

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "ST"
GROUPS, GROUP_LEN = 4, 5
MAX_INPUT = 100  # characters a redemption may send before it is refused outright
MAX_BATCH = 1000
MAX_AMOUNT = 100_000 * 1_000_000  # $100,000 a code
FAILURES_ALLOWED = 10
FAILURE_WINDOW = timedelta(minutes=15)
INVALID_MESSAGE = ("This code cannot be redeemed: it is unknown, already redeemed, revoked or "
                   "expired.")


def generate() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LEN))
    parts = [body[i:i + GROUP_LEN] for i in range(0, len(body), GROUP_LEN)]
    return "-".join([PREFIX, *parts])


def normalise(text: str) -> str | None:
    """The canonical form (upper case, no spaces or hyphens), or None when ``text`` cannot be a
    code at all (too long, a character outside the alphabet)."""
    if len(text) > MAX_INPUT:
        return None
    flat = "".join(text.split()).replace("-", "").upper()
    if not flat.startswith(PREFIX):
        return None
    body = flat[len(PREFIX):]
    if len(body) != GROUPS * GROUP_LEN or any(c not in ALPHABET for c in body):
        return None
    return PREFIX + body


def digest(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class Batch:
    ids: list[int]
    codes: list[str]  # in full, this once


async def create_batch(engine: AsyncEngine, count: int, amount_micro: int, *, batch: str,
                       expires_at: datetime | None, actor: str) -> Batch:
    if not 1 <= count <= MAX_BATCH:
        raise InvalidRequest(f"'count' must be from 1 to {MAX_BATCH}.", param="count",
                             code="invalid_value")
    if not 0 < amount_micro <= MAX_AMOUNT:
        raise InvalidRequest("'amount' must be more than zero and at most $100,000.",
                             param="amount", code="invalid_amount")
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidRequest("'expires_at' must be in the future.", param="expires_at",
                             code="invalid_value")
    made = sorted({generate() for _ in range(count)})
    while len(made) < count:  # a collision in 98 bits: never, but cheap to rule out
        made = sorted({*made, generate()})
    rows = [store.NewCode(digest(c.replace("-", "")), c[-4:]) for c in made]
    ids = await store.insert_batch(engine, rows, amount_micro, batch=batch,
                                   expires_at=expires_at, actor=actor)
    return Batch(ids, made)


async def redeem(state: AppState, account_id: int, text: str, *, actor: str) -> store.Redeemed:
    """Credit the account with the code's amount, once; raise the one constant 400 otherwise
    (429 once the account has failed too often)."""
    count, oldest = await store.failures_since(state.engine, account_id, FAILURE_WINDOW)
    if count >= FAILURES_ALLOWED:
        wait = 60.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            wait = max(1.0, (oldest + FAILURE_WINDOW - datetime.now(UTC)).total_seconds())
        raise RateLimited("Too many failed redemptions for this account; try again later.",
                          wait, code="too_many_redemption_attempts", param="code")
    canonical = normalise(text)
    done = None
    if canonical is not None:
        done = await store.redeem(state.engine, digest(canonical), account_id, actor=actor,
                                  origin=state.origin)
    if done is None:
        await store.note_failure(state.engine, account_id, FAILURE_WINDOW)
        raise InvalidRequest(INVALID_MESSAGE, param="code", code="invalid_code")
    # The shared counters (Redis, SQL, memory) learn of the credit now, as for an admin credit;
    # other processes through their change pollers.
    await state.reserver.apply_external([(done.transaction_id, account_id, done.amount_micro)])
    return done

"""Queries of record for redemption codes: a batch inserted, listed, revoked; one code redeemed.

``redeem`` is the one path that spends a code. In a single database transaction it marks the
code redeemed with a conditional UPDATE (``… WHERE redeemed_at IS NULL AND revoked_at IS NULL
AND not expired``) and, only when that UPDATE changed the row, appends the wallet credit whose
``request_id`` is ``redeem:<code id>`` (unique). Concurrent attempts on one code, from any number
of processes, serialise on the row: PostgreSQL re-checks the WHERE clause after the first
transaction commits and finds the code spent; SQLite runs one writer at a time. So a code
credits at most once, and never without its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.store.repo import add_transaction, now
from smartoken.store.schema import redemption_codes, redemption_failures, wallets

REQUEST_PREFIX = "redeem:"  # wallet_transactions.request_id of a code's credit


@dataclass(frozen=True, slots=True)
class NewCode:
    code_hash: str
    hint: str


@dataclass(frozen=True, slots=True)
class Redeemed:
    code_id: int
    amount_micro: int
    transaction_id: int
    balance_micro: int


async def insert_batch(engine: AsyncEngine, codes: list[NewCode], amount_micro: int, *,
                       batch: str, expires_at: datetime | None, actor: str) -> list[int]:
    """Insert every code of a batch in one transaction; returns their ids in order."""
    at = now()
    rows = [{"batch": batch, "code_hash": c.code_hash, "hint": c.hint,
             "amount_micro": amount_micro, "expires_at": expires_at, "created_at": at,
             "created_by": actor} for c in codes]
    async with engine.begin() as conn:
        await conn.execute(insert(redemption_codes), rows)
        found = (await conn.execute(
            select(redemption_codes.c.id, redemption_codes.c.code_hash)
            .where(redemption_codes.c.code_hash.in_([c.code_hash for c in codes])))).all()
    by_hash = {str(h): int(i) for i, h in found}
    return [by_hash[c.code_hash] for c in codes]


async def list_codes(engine: AsyncEngine, *, batch: str | None = None, limit: int = 100,
                     offset: int = 0) -> list[dict[str, Any]]:
    q = select(redemption_codes).order_by(redemption_codes.c.id.desc())
    if batch is not None:
        q = q.where(redemption_codes.c.batch == batch)
    async with engine.connect() as conn:
        rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
    return [dict(r) for r in rows]


async def get_codes(engine: AsyncEngine, ids: list[int]) -> list[dict[str, Any]]:
    """The codes with these ids, in the order of ``ids``."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(redemption_codes)
                                   .where(redemption_codes.c.id.in_(ids)))).mappings().all()
    by_id = {int(r["id"]): dict(r) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


async def get_code(engine: AsyncEngine, code_id: int) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(redemption_codes)
                                  .where(redemption_codes.c.id == code_id))).mappings().first()
    return dict(row) if row else None


async def revoke(engine: AsyncEngine, *, code_id: int | None = None,
                 batch: str | None = None) -> int:
    """Revoke one code or every unredeemed code of a batch; returns how many were revoked
    (a redeemed or already revoked code is left as it is)."""
    cond = redemption_codes.c.id == code_id if code_id is not None \
        else redemption_codes.c.batch == batch
    async with engine.begin() as conn:
        result = await conn.execute(
            update(redemption_codes)
            .where(cond, redemption_codes.c.redeemed_at.is_(None),
                   redemption_codes.c.revoked_at.is_(None))
            .values(revoked_at=now()))
    return int(result.rowcount or 0)


async def redeem(engine: AsyncEngine, code_hash: str, account_id: int, *, actor: str,
                 origin: str) -> Redeemed | None:
    """Spend the code and credit the wallet in one transaction; None when the code is unknown,
    already redeemed, revoked or expired (the caller cannot tell which: one answer for all)."""
    at = now()
    usable = and_(redemption_codes.c.code_hash == code_hash,
                  redemption_codes.c.redeemed_at.is_(None),
                  redemption_codes.c.revoked_at.is_(None),
                  or_(redemption_codes.c.expires_at.is_(None),
                      redemption_codes.c.expires_at > at))
    async with engine.begin() as conn:
        result = await conn.execute(
            update(redemption_codes).where(usable)
            .values(redeemed_at=at, redeemed_by=account_id)
            .returning(redemption_codes.c.id, redemption_codes.c.amount_micro,
                       redemption_codes.c.hint))
        row = result.first()
        if row is None:
            return None
        code_id, amount, hint = int(row[0]), int(row[1]), str(row[2])
        txn_id = await add_transaction(
            conn, account_id, "credit", amount, actor=actor,
            reason=f"redemption code …{hint}", request_id=f"{REQUEST_PREFIX}{code_id}",
            origin=origin)
        await conn.execute(update(redemption_codes).where(redemption_codes.c.id == code_id)
                           .values(transaction_id=txn_id))
        balance = await conn.scalar(select(wallets.c.balance_micro)
                                    .where(wallets.c.account_id == account_id))
    return Redeemed(code_id, amount, txn_id, int(balance or 0))


# ---------------------------------------------------------------- the guessing brake


async def failures_since(engine: AsyncEngine, account_id: int,
                         window: timedelta) -> tuple[int, datetime | None]:
    """(failed redemptions of the account within ``window``, the oldest of them)."""
    since = now() - window
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(func.count(), func.min(redemption_failures.c.at))
            .where(redemption_failures.c.account_id == account_id,
                   redemption_failures.c.at > since))).first()
    assert row is not None
    return int(row[0]), row[1]


async def note_failure(engine: AsyncEngine, account_id: int, window: timedelta) -> None:
    """Count one failed redemption; the account's failures older than the window go."""
    at = now()
    async with engine.begin() as conn:
        await conn.execute(delete(redemption_failures).where(
            redemption_failures.c.account_id == account_id,
            redemption_failures.c.at <= at - window))
        await conn.execute(insert(redemption_failures).values(account_id=account_id, at=at))

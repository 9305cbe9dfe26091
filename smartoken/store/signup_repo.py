"""Sign-up queries: accounts by email, invite codes, verification with its trial credit.

Every function takes the engine and keeps no state, like ``smartoken.store.repo``. The two
races that matter are decided by the database: an invite code is taken by one conditional
UPDATE (one winner), and the trial credit's ``request_id`` (``trial:<account id>``) is unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.store.repo import Conflict, add_transaction, now
from smartoken.store.schema import (
    accounts,
    console_sessions,
    invite_codes,
    wallet_transactions,
    wallets,
)

TRIAL_ORIGIN = "trial"


class InviteRefused(ValueError):
    """The invite code is unknown, used, revoked or expired (one answer for all four)."""


def trial_request_id(account_id: int) -> str:
    return f"trial:{account_id}"


async def account_by_email(engine: AsyncEngine, email: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(accounts).where(accounts.c.email == email))
               ).mappings().first()
    return dict(row) if row else None


async def name_taken(engine: AsyncEngine, name: str) -> bool:
    async with engine.connect() as conn:
        return await conn.scalar(select(accounts.c.id).where(accounts.c.name == name)) \
            is not None


async def create_account(engine: AsyncEngine, name: str, email: str, password_hash: str,
                         invite_hash: str | None) -> int:
    """A user account with an unverified email, its empty wallet and, when ``invite_hash``,
    the invite code taken, in one transaction. Raises ``Conflict`` (name or email taken) or
    ``InviteRefused``; nothing is written then."""
    try:
        async with engine.begin() as conn:
            result = await conn.execute(insert(accounts).values(
                name=name, role="user", password_hash=password_hash, created_at=now(),
                email=email))
            account_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            await conn.execute(insert(wallets).values(account_id=account_id, balance_micro=0))
            if invite_hash is not None:
                at = now()
                taken = await conn.execute(
                    update(invite_codes)
                    .where(invite_codes.c.code_hash == invite_hash,
                           invite_codes.c.used_at.is_(None),
                           invite_codes.c.revoked_at.is_(None),
                           or_(invite_codes.c.expires_at.is_(None),
                               invite_codes.c.expires_at > at))
                    .values(used_at=at, used_by=account_id))
                if taken.rowcount != 1:
                    raise InviteRefused("invite code refused")
            return account_id
    except IntegrityError:
        raise Conflict("account name or email already exists") from None


@dataclass(frozen=True, slots=True)
class Verified:
    account_id: int
    first: bool  # this call verified the address (False: it was verified already)
    trial_txn: int | None  # the trial credit written by this call, if any
    trial_micro: int


async def verify_email(engine: AsyncEngine, account_id: int, email: str,
                       trial_micro: int) -> Verified | None:
    """Mark ``email`` verified for the account (None when the account no longer has that
    address or is disabled) and, the first time, credit ``trial_micro`` with request id
    ``trial:<id>``: concurrent or repeated verifications credit once.

    The credit's origin is ``trial``, no process's own: every process's change poller (this
    one's too) applies it to its reserver within a second, as for a CLI credit."""
    at = now()
    try:
        async with engine.begin() as conn:
            row = (await conn.execute(
                select(accounts.c.id, accounts.c.email_verified_at)
                .where(accounts.c.id == account_id, accounts.c.email == email,
                       accounts.c.disabled_at.is_(None)))).first()
            if row is None:
                return None
            marked = await conn.execute(
                update(accounts).where(accounts.c.id == account_id,
                                       accounts.c.email_verified_at.is_(None))
                .values(email_verified_at=at))
            first = marked.rowcount == 1
            txn = None
            if trial_micro > 0:
                rid = trial_request_id(account_id)
                done = await conn.scalar(select(wallet_transactions.c.id)
                                         .where(wallet_transactions.c.request_id == rid))
                if done is None:
                    txn = await add_transaction(
                        conn, account_id, "credit", trial_micro, actor="system",
                        reason="trial credit (email verified)", request_id=rid,
                        origin=TRIAL_ORIGIN)
            return Verified(account_id, first, txn, trial_micro if txn else 0)
    except IntegrityError:  # a concurrent verification wrote the trial credit first
        return Verified(account_id, False, None, 0)


async def set_password_ending_sessions(engine: AsyncEngine, account_id: int,
                                       password_hash: str, expected_old: str | None) -> bool:
    """Replace the password only if it is still ``expected_old`` (a reset link is single
    use: two concurrent resets with one link change it once) and end every console session
    of the account. Returns whether it changed."""
    async with engine.begin() as conn:
        cond = accounts.c.password_hash == expected_old if expected_old is not None \
            else accounts.c.password_hash.is_(None)
        changed = await conn.execute(update(accounts)
                                     .where(accounts.c.id == account_id, cond)
                                     .values(password_hash=password_hash))
        if changed.rowcount != 1:
            return False
        await conn.execute(delete(console_sessions)
                           .where(console_sessions.c.account_id == account_id))
    return True


# ---------------------------------------------------------------- invite codes


async def add_invites(engine: AsyncEngine, codes: list[tuple[str, str]], created_by: str,
                      expires_at: datetime | None, note: str) -> None:
    """``codes``: (sha256 hex, visible prefix) pairs."""
    at = now()
    async with engine.begin() as conn:
        await conn.execute(insert(invite_codes), [
            {"code_hash": h, "prefix": p, "note": note, "created_by": created_by,
             "created_at": at, "expires_at": expires_at} for h, p in codes])


async def list_invites(engine: AsyncEngine, limit: int = 200) -> list[dict[str, Any]]:
    q = (select(invite_codes, accounts.c.name.label("used_by_name"))
         .outerjoin(accounts, accounts.c.id == invite_codes.c.used_by)
         .order_by(invite_codes.c.id.desc()).limit(limit))
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(q)).mappings().all()]


def invite_state(row: dict[str, Any], at: datetime) -> str:
    """open, used, revoked or expired."""
    expires = row["expires_at"]
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=at.tzinfo)
    return ("used" if row["used_at"] else "revoked" if row["revoked_at"]
            else "expired" if expires is not None and expires <= at else "open")


async def revoke_invite(engine: AsyncEngine, invite_id: int) -> bool:
    async with engine.begin() as conn:
        done = await conn.execute(update(invite_codes)
                                  .where(invite_codes.c.id == invite_id,
                                         invite_codes.c.used_at.is_(None),
                                         invite_codes.c.revoked_at.is_(None))
                                  .values(revoked_at=now()))
    return done.rowcount == 1


__all__ = ["Conflict", "InviteRefused", "Verified"]

"""Alert settings and alert events in the database. Every function takes the engine."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, cast, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.store.repo import now
from smartoken.store.schema import (
    accounts,
    alert_events,
    alert_settings,
    api_keys,
    wallet_transactions,
    wallets,
)

DEFAULT_PERCENTS: tuple[int, ...] = (80, 100)
LOW_BALANCE, KEY_DAILY, KEY_MONTHLY = "low_balance", "key_daily", "key_monthly"
OPEN = "open"


def parse_percents(raw: str | None) -> tuple[int, ...]:
    if raw is None:
        return DEFAULT_PERCENTS
    return tuple(int(p) for p in raw.split(",") if p.strip().isdigit())


@dataclass(slots=True)
class AlertSettings:
    account_id: int
    low_balance_micro: int | None = None
    key_percents: tuple[int, ...] = DEFAULT_PERCENTS
    email: str | None = None
    email_enabled: bool = True
    webhook_url: str | None = None
    webhook_secret: str | None = None  # sealed (signing.seal)


def _settings(account_id: int, row: Any) -> AlertSettings:
    if row is None:
        return AlertSettings(account_id)
    return AlertSettings(account_id, row["low_balance_micro"],
                         parse_percents(row["key_percents"]), row["email"],
                         bool(row["email_enabled"]), row["webhook_url"], row["webhook_secret"])


async def get_settings(engine: AsyncEngine, account_id: int) -> AlertSettings:
    async with engine.connect() as conn:
        row = (await conn.execute(select(alert_settings).where(
            alert_settings.c.account_id == account_id))).mappings().first()
    return _settings(account_id, row)


async def settings_of(engine: AsyncEngine, account_ids: Iterable[int]) -> dict[int, AlertSettings]:
    ids = sorted(set(account_ids))
    async with engine.connect() as conn:
        rows = (await conn.execute(select(alert_settings).where(
            alert_settings.c.account_id.in_(ids)))).mappings().all()
    found = {int(r["account_id"]): _settings(int(r["account_id"]), r) for r in rows}
    return {a: found.get(a) or AlertSettings(a) for a in ids}


async def save_settings(engine: AsyncEngine, account_id: int, values: dict[str, Any]) -> None:
    """Change the given columns (``key_percents`` as a tuple); create the row when missing."""
    values = dict(values)
    if "key_percents" in values:
        values["key_percents"] = ",".join(str(p) for p in values["key_percents"])
    values["updated_at"] = now()
    s = alert_settings.c
    for _ in range(2):
        async with engine.begin() as conn:
            done = await conn.execute(update(alert_settings)
                                      .where(s.account_id == account_id).values(**values))
            if done.rowcount:
                return
        try:
            async with engine.begin() as conn:
                full = {"key_percents": ",".join(map(str, DEFAULT_PERCENTS)),
                        "email_enabled": True, **values}
                await conn.execute(insert(alert_settings).values(account_id=account_id, **full))
            return
        except IntegrityError:  # made meanwhile by another request: update it
            continue


async def account_email(engine: AsyncEngine, account_id: int) -> str | None:
    """The account's email once verified (sign-up), else None."""
    async with engine.connect() as conn:
        value = await conn.scalar(select(accounts.c.email).where(
            accounts.c.id == account_id, accounts.c.email_verified_at.is_not(None)))
    return str(value) if value else None


async def credited_since(engine: AsyncEngine, after_id: int) -> tuple[int, set[int]]:
    """(newest transaction id, the accounts with a low-balance threshold credited after
    ``after_id``): whatever wrote the credit (admin, payment, code, CLI, another replica)."""
    t, s = wallet_transactions.c, alert_settings.c
    async with engine.connect() as conn:
        top = int(await conn.scalar(select(func.max(t.id))) or 0)
        if top <= after_id:
            return top, set()
        rows = await conn.execute(
            select(t.account_id).distinct()
            .join(alert_settings, s.account_id == t.account_id)
            .where(t.id > after_id, t.id <= top, t.amount_micro > 0,
                   s.low_balance_micro.is_not(None)))
        return top, {int(r[0]) for r in rows}


async def balances(engine: AsyncEngine, account_ids: Iterable[int]) -> dict[int, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(wallets.c.account_id, wallets.c.balance_micro)
                                  .where(wallets.c.account_id.in_(sorted(set(account_ids)))))
        return {int(a): int(b) for a, b in rows}


async def budget_keys(engine: AsyncEngine, key_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The keys among ``key_ids`` that have a daily or monthly budget."""
    k = api_keys.c
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(k.id, k.account_id, k.name, k.prefix, k.daily_budget_micro,
                   k.monthly_budget_micro)
            .where(k.id.in_(sorted(set(key_ids))),
                   (k.daily_budget_micro.is_not(None)) | (k.monthly_budget_micro.is_not(None)))
        )).mappings().all()
    return [dict(r) for r in rows]


async def open_low_balance(engine: AsyncEngine,
                           subjects: Iterable[str]) -> set[tuple[str, int]]:
    """(subject, threshold) of the low-balance alerts still open among ``subjects``."""
    e = alert_events.c
    async with engine.connect() as conn:
        rows = await conn.execute(select(e.subject, e.threshold).where(
            e.kind == LOW_BALANCE, e.period == OPEN, e.subject.in_(sorted(set(subjects)))))
        return {(str(r[0]), int(r[1])) for r in rows}


async def rearm(engine: AsyncEngine, account_id: int) -> int:
    """Close the account's open low-balance alerts whose threshold its balance has reached
    again, judged on the balance as the same statement reads it (a replica that read an older
    balance cannot close an alert fired on a newer one)."""
    e = alert_events.c
    balance = select(wallets.c.balance_micro).where(
        wallets.c.account_id == account_id).scalar_subquery()
    async with engine.begin() as conn:
        done = await conn.execute(
            update(alert_events)
            .where(e.subject == f"account:{account_id}", e.kind == LOW_BALANCE,
                   e.period == OPEN, e.threshold <= balance)
            .values(period=literal("closed:").concat(cast(e.id, String))))
        return int(done.rowcount or 0)


async def claim(engine: AsyncEngine, row: dict[str, Any]) -> int | None:
    """Insert the alert, or None when its (subject, kind, threshold, period) fired already."""
    try:
        async with engine.begin() as conn:
            result = await conn.execute(insert(alert_events).values(**row))
            return int(result.inserted_primary_key[0])  # type: ignore[index]
    except IntegrityError:
        return None


async def due(engine: AsyncEngine, at: float, limit: int = 20) -> list[dict[str, Any]]:
    e = alert_events.c
    async with engine.connect() as conn:
        rows = (await conn.execute(select(alert_events).where(
            e.done.is_(False), e.next_at <= at).order_by(e.next_at).limit(limit)
        )).mappings().all()
    return [dict(r) for r in rows]


async def next_due(engine: AsyncEngine) -> float | None:
    e = alert_events.c
    async with engine.connect() as conn:
        rows = (await conn.execute(select(e.next_at).where(e.done.is_(False))
                                   .order_by(e.next_at).limit(1))).all()
    return float(rows[0][0]) if rows else None


async def lease(engine: AsyncEngine, event_id: int, seen_next_at: float, attempts: int,
                until: float) -> bool:
    """Take the event's next attempt (one replica wins): its ``next_at`` moves to ``until``."""
    e = alert_events.c
    async with engine.begin() as conn:
        done = await conn.execute(update(alert_events).where(
            e.id == event_id, e.done.is_(False), e.next_at == seen_next_at,
            e.attempts == attempts).values(next_at=until, attempts=attempts + 1))
        return bool(done.rowcount)


async def finish(engine: AsyncEngine, event_id: int, values: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(alert_events).where(alert_events.c.id == event_id)
                           .values(**values))


async def history(engine: AsyncEngine, account_id: int, limit: int = 50,
                  offset: int = 0) -> list[dict[str, Any]]:
    e = alert_events.c
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(alert_events, api_keys.c.name.label("key_name"),
                   api_keys.c.prefix.label("key_prefix"))
            .select_from(alert_events.outerjoin(api_keys, and_(api_keys.c.id == e.key_id)))
            .where(e.account_id == account_id)
            .order_by(e.created_at.desc(), e.id.desc()).limit(limit).offset(offset)
        )).mappings().all()
    return [dict(r) for r in rows]

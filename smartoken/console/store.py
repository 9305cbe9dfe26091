"""Console queries: browser sessions, console settings and the aggregates behind its charts.

Every function takes the engine and keeps no state, like ``smartoken.store.repo``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.store.repo import now
from smartoken.store.schema import accounts, console_sessions, console_settings, usage_records

# ---------------------------------------------------------------- settings


async def get_setting(engine: AsyncEngine, name: str) -> str | None:
    async with engine.connect() as conn:
        value: str | None = await conn.scalar(
            select(console_settings.c.value).where(console_settings.c.name == name))
    return value


async def setting_once(engine: AsyncEngine, name: str, value: str) -> str:
    """Store ``value`` under ``name`` unless one is there already; return the stored value.
    Safe when several processes race: the primary key decides, everyone reads the winner."""
    existing = await get_setting(engine, name)
    if existing is not None:
        return existing
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(console_settings).values(name=name, value=value))
        return value
    except IntegrityError:
        stored = await get_setting(engine, name)
        assert stored is not None
        return stored


async def set_setting(engine: AsyncEngine, name: str, value: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(console_settings).where(console_settings.c.name == name))
        await conn.execute(insert(console_settings).values(name=name, value=value))


# ---------------------------------------------------------------- sessions


async def create_session(engine: AsyncEngine, sid: str, account_id: int, csrf: str,
                         expires_at: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(console_sessions).where(console_sessions.c.expires_at < now()))
        await conn.execute(insert(console_sessions).values(
            id=sid, account_id=account_id, csrf=csrf, created_at=now(), expires_at=expires_at))


async def session_account(engine: AsyncEngine, sid: str) -> dict[str, Any] | None:
    """The live session ``sid`` with its account (id, name, role), or None."""
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(console_sessions.c.csrf, console_sessions.c.expires_at,
                   accounts.c.id, accounts.c.name, accounts.c.role)
            .join(accounts, accounts.c.id == console_sessions.c.account_id)
            .where(console_sessions.c.id == sid, accounts.c.disabled_at.is_(None))
        )).mappings().first()
    return dict(row) if row else None


async def delete_session(engine: AsyncEngine, sid: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(console_sessions).where(console_sessions.c.id == sid))


# ---------------------------------------------------------------- aggregates


def _scope(account_id: int | None) -> Any:
    return True if account_id is None else usage_records.c.account_id == account_id


async def spend_by_day(engine: AsyncEngine, account_id: int | None,
                       since_day: str) -> list[dict[str, Any]]:
    """Per budget-window day since ``since_day``: requests, cost and tokens."""
    u = usage_records.c
    q = (select(u.day, func.count().label("requests"),
                func.coalesce(func.sum(u.cost_micro), 0).label("cost_micro"),
                func.coalesce(func.sum(u.prompt_tokens), 0).label("prompt_tokens"),
                func.coalesce(func.sum(u.completion_tokens), 0).label("completion_tokens"))
         .where(_scope(account_id), u.day >= since_day).group_by(u.day).order_by(u.day))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).mappings().all()
    return [dict(r) for r in rows]


async def spend_by_model(engine: AsyncEngine, account_id: int | None,
                         since_day: str) -> list[dict[str, Any]]:
    u = usage_records.c
    cost = func.coalesce(func.sum(u.cost_micro), 0)
    q = (select(u.requested_model.label("model"), func.count().label("requests"),
                cost.label("cost_micro"),
                func.coalesce(func.sum(u.prompt_tokens + u.completion_tokens), 0)
                .label("tokens"))
         .where(_scope(account_id), u.day >= since_day)
         .group_by(u.requested_model).order_by(cost.desc()))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).mappings().all()
    return [dict(r) for r in rows]


async def key_spend_table(engine: AsyncEngine, account_id: int | None, day: str,
                          month: str) -> dict[int, dict[str, int]]:
    """key id -> {day, month, total} spend (micro-USD), request count (all, this month)."""
    u = usage_records.c
    q = (select(u.key_id,
                func.coalesce(func.sum(u.cost_micro), 0),
                func.coalesce(func.sum(u.cost_micro).filter(u.month == month), 0),
                func.coalesce(func.sum(u.cost_micro).filter(u.day == day), 0),
                func.count(), func.count().filter(u.month == month))
         .where(_scope(account_id)).group_by(u.key_id))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    return {int(k): {"total": int(t), "month": int(m), "day": int(d), "requests": int(n),
                     "month_requests": int(mn)}
            for k, t, m, d, n, mn in rows}


async def usage_by_id(engine: AsyncEngine, request_id: str,
                      account_id: int | None) -> dict[str, Any] | None:
    q = select(usage_records).where(usage_records.c.id == request_id, _scope(account_id))
    async with engine.connect() as conn:
        row = (await conn.execute(q)).mappings().first()
    return dict(row) if row else None

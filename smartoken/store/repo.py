"""Queries of record. Every function takes the engine; none keeps state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from smartoken.i18n.message import N_
from smartoken.store.schema import accounts, api_keys, usage_records, wallet_transactions, wallets


def now() -> datetime:
    return datetime.now(UTC)


class Conflict(ValueError):
    pass


# ---------------------------------------------------------------- accounts and wallets


async def create_account(
    engine: AsyncEngine, name: str, role: str = "user", password_hash: str | None = None
) -> int:
    try:
        async with engine.begin() as conn:
            exists = await conn.scalar(select(accounts.c.id).where(accounts.c.name == name))
            if exists is not None:
                raise Conflict(N_("account %(name)s already exists", name=repr(name)))
            result = await conn.execute(
                insert(accounts).values(name=name, role=role, password_hash=password_hash,
                                        created_at=now())
            )
            account_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            await conn.execute(insert(wallets).values(account_id=account_id, balance_micro=0))
            return account_id
    except IntegrityError:  # another process inserted the same name meanwhile
        raise Conflict(N_("account %(name)s already exists", name=repr(name))) from None


async def get_account(engine: AsyncEngine, *, name: str | None = None,
                      account_id: int | None = None) -> dict[str, Any] | None:
    cond = accounts.c.name == name if name is not None else accounts.c.id == account_id
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(accounts, wallets.c.balance_micro)
            .join(wallets, wallets.c.account_id == accounts.c.id).where(cond)
        )).mappings().first()
    return dict(row) if row else None


async def list_accounts(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(accounts.c.id, accounts.c.name, accounts.c.role, accounts.c.created_at,
                   accounts.c.disabled_at, wallets.c.balance_micro)
            .join(wallets, wallets.c.account_id == accounts.c.id).order_by(accounts.c.id)
        )).mappings().all()
    return [dict(r) for r in rows]


async def set_password(engine: AsyncEngine, account_id: int, password_hash: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(accounts).where(accounts.c.id == account_id)
                           .values(password_hash=password_hash))


async def add_transaction(
    conn: AsyncConnection, account_id: int, kind: str, amount: int, *, actor: str = "system",
    reason: str = "", request_id: str | None = None, origin: str = "",
) -> int:
    """Append one wallet transaction and move the wallet balance by the same amount."""
    result = await conn.execute(
        insert(wallet_transactions).values(
            account_id=account_id, kind=kind, amount_micro=amount, request_id=request_id,
            actor=actor, reason=reason, origin=origin, created_at=now(),
        )
    )
    await conn.execute(
        update(wallets).where(wallets.c.account_id == account_id)
        .values(balance_micro=wallets.c.balance_micro + amount, version=wallets.c.version + 1)
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def credit_wallet(
    engine: AsyncEngine, account_id: int, amount: int, *, kind: str = "credit",
    actor: str = "admin", reason: str = "", origin: str = "",
) -> tuple[int, int]:
    """Credit (or adjust, when negative) a wallet. Returns (transaction id, new balance)."""
    async with engine.begin() as conn:
        txn = await add_transaction(conn, account_id, kind, amount, actor=actor, reason=reason,
                                    origin=origin)
        balance = await conn.scalar(
            select(wallets.c.balance_micro).where(wallets.c.account_id == account_id)
        )
    return txn, int(balance or 0)


async def wallet_balance(engine: AsyncEngine, account_id: int) -> int:
    async with engine.connect() as conn:
        value = await conn.scalar(
            select(wallets.c.balance_micro).where(wallets.c.account_id == account_id)
        )
    return int(value or 0)


async def list_transactions(
    engine: AsyncEngine, account_id: int | None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    q = select(wallet_transactions).order_by(wallet_transactions.c.id.desc())
    if account_id is not None:
        q = q.where(wallet_transactions.c.account_id == account_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
    return [dict(r) for r in rows]


async def wallet_snapshot(engine: AsyncEngine, account_id: int) -> tuple[int, int]:
    """(balance, id of the newest wallet transaction), read in one transaction."""
    async with engine.begin() as conn:
        top = await conn.scalar(select(func.max(wallet_transactions.c.id)))
        balance = await conn.scalar(
            select(wallets.c.balance_micro).where(wallets.c.account_id == account_id)
        )
    return int(balance or 0), int(top or 0)


async def transactions_since(
    engine: AsyncEngine, after_id: int, origin: str
) -> tuple[int, list[tuple[int, int, int]]]:
    """Transactions not written by ``origin`` after ``after_id``: (max id, [(id, acct, amt)])."""
    async with engine.connect() as conn:
        top = await conn.scalar(select(func.max(wallet_transactions.c.id)))
        rows = (await conn.execute(
            select(wallet_transactions.c.id, wallet_transactions.c.account_id,
                   wallet_transactions.c.amount_micro)
            .where(wallet_transactions.c.id > after_id,
                   wallet_transactions.c.id <= (top or 0),
                   wallet_transactions.c.origin != origin)
        )).all()
    return int(top or 0), [(int(i), int(a), int(m)) for i, a, m in rows]


# ---------------------------------------------------------------- API keys

KEY_COLUMNS = (
    api_keys.c.id, api_keys.c.account_id, api_keys.c.name, api_keys.c.prefix,
    api_keys.c.families, api_keys.c.daily_budget_micro, api_keys.c.monthly_budget_micro,
    api_keys.c.rpm, api_keys.c.tpm, api_keys.c.expires_at, api_keys.c.revoked_at,
    api_keys.c.created_at, api_keys.c.updated_at, api_keys.c.admin,
)


@dataclass(slots=True)
class KeyFields:
    name: str = ""
    families: Sequence[str] | None = None
    daily_budget_micro: int | None = None
    monthly_budget_micro: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    expires_at: datetime | None = None
    admin: bool = False


def _key_values(fields: KeyFields) -> dict[str, Any]:
    return {
        "name": fields.name,
        "families": orjson.dumps(list(fields.families)).decode() if fields.families else None,
        "daily_budget_micro": fields.daily_budget_micro,
        "monthly_budget_micro": fields.monthly_budget_micro,
        "rpm": fields.rpm,
        "tpm": fields.tpm,
        "expires_at": fields.expires_at,
        "admin": fields.admin,
    }


async def insert_key(
    engine: AsyncEngine, account_id: int, prefix: str, secret_hash: str, fields: KeyFields
) -> int:
    ts = now()
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(api_keys).values(account_id=account_id, prefix=prefix, secret_hash=secret_hash,
                                    created_at=ts, updated_at=ts, **_key_values(fields))
        )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def key_by_hash(engine: AsyncEngine, secret_hash: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(*KEY_COLUMNS, accounts.c.role, accounts.c.name.label("account_name"),
                   accounts.c.disabled_at.label("account_disabled_at"))
            .join(accounts, accounts.c.id == api_keys.c.account_id)
            .where(api_keys.c.secret_hash == secret_hash)
        )).mappings().first()
    return dict(row) if row else None


async def get_key(engine: AsyncEngine, key_id: int) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(*KEY_COLUMNS).where(api_keys.c.id == key_id))
               ).mappings().first()
    return dict(row) if row else None


async def list_keys(engine: AsyncEngine, account_id: int | None) -> list[dict[str, Any]]:
    q = select(*KEY_COLUMNS).order_by(api_keys.c.id)
    if account_id is not None:
        q = q.where(api_keys.c.account_id == account_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).mappings().all()
    return [dict(r) for r in rows]


async def update_key(engine: AsyncEngine, key_id: int, values: dict[str, Any]) -> bool:
    if "families" in values and values["families"] is not None:
        values["families"] = orjson.dumps(list(values["families"])).decode()
    async with engine.begin() as conn:
        result = await conn.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(updated_at=now(), **values)
        )
    return bool(result.rowcount)


async def keys_changed_at(engine: AsyncEngine) -> datetime | None:
    async with engine.connect() as conn:
        value: datetime | None = await conn.scalar(select(func.max(api_keys.c.updated_at)))
    return value


# ---------------------------------------------------------------- usage


async def key_spend(engine: AsyncEngine, key_id: int, day: str, month: str) -> tuple[int, int]:
    async with engine.connect() as conn:
        d = await conn.scalar(select(func.coalesce(func.sum(usage_records.c.cost_micro), 0))
                              .where(usage_records.c.key_id == key_id, usage_records.c.day == day))
        m = await conn.scalar(select(func.coalesce(func.sum(usage_records.c.cost_micro), 0))
                              .where(usage_records.c.key_id == key_id,
                                     usage_records.c.month == month))
    return int(d or 0), int(m or 0)


@dataclass(slots=True)
class UsageFilter:
    account_id: int | None = None
    key_id: int | None = None
    model: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0


def _usage_where(f: UsageFilter) -> Any:
    conds = []
    if f.account_id is not None:
        conds.append(usage_records.c.account_id == f.account_id)
    if f.key_id is not None:
        conds.append(usage_records.c.key_id == f.key_id)
    if f.model:
        conds.append(usage_records.c.requested_model == f.model)
    if f.status:
        conds.append(usage_records.c.status == f.status)
    if f.since:
        conds.append(usage_records.c.created_at >= f.since)
    if f.until:
        conds.append(usage_records.c.created_at < f.until)
    return and_(True, *conds)


async def query_usage(engine: AsyncEngine, f: UsageFilter) -> list[dict[str, Any]]:
    q = (select(usage_records).where(_usage_where(f))
         .order_by(usage_records.c.created_at.desc(), usage_records.c.id)
         .limit(f.limit).offset(f.offset))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).mappings().all()
    return [dict(r) for r in rows]


async def usage_totals(engine: AsyncEngine, f: UsageFilter) -> dict[str, int]:
    q = select(
        func.count(), func.coalesce(func.sum(usage_records.c.cost_micro), 0),
        func.coalesce(func.sum(usage_records.c.prompt_tokens), 0),
        func.coalesce(func.sum(usage_records.c.completion_tokens), 0),
    ).where(_usage_where(f))
    async with engine.connect() as conn:
        n, cost, p, c = (await conn.execute(q)).one()
    return {"requests": int(n), "cost_micro": int(cost), "prompt_tokens": int(p),
            "completion_tokens": int(c)}

"""Queries behind the admin API that repo.py lacks: ledger sums, roles, paged listings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.store.repo import now
from smartoken.store.schema import accounts, api_keys, wallet_transactions, wallets


async def ledger_sum(engine: AsyncEngine, account_id: int) -> tuple[int, int]:
    """(sum of the account's wallet transactions, the wallet's stored balance)."""
    async with engine.begin() as conn:
        total = await conn.scalar(
            select(func.coalesce(func.sum(wallet_transactions.c.amount_micro), 0))
            .where(wallet_transactions.c.account_id == account_id))
        balance = await conn.scalar(
            select(wallets.c.balance_micro).where(wallets.c.account_id == account_id))
    return int(total or 0), int(balance or 0)


async def set_disabled(engine: AsyncEngine, account_id: int, disabled: bool) -> None:
    """Disable (its keys and console sessions stop working) or enable an account."""
    async with engine.begin() as conn:
        await conn.execute(update(accounts).where(accounts.c.id == account_id)
                           .values(disabled_at=now() if disabled else None))
        # Touch the account's keys so that every process drops its cached key contexts.
        await conn.execute(update(api_keys).where(api_keys.c.account_id == account_id)
                           .values(updated_at=now()))


async def set_role(engine: AsyncEngine, account_id: int, role: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(accounts).where(accounts.c.id == account_id)
                           .values(role=role))
        # Touch the account's keys so that every process drops its cached key contexts.
        await conn.execute(update(api_keys).where(api_keys.c.account_id == account_id)
                           .values(updated_at=now()))


async def key_owner(engine: AsyncEngine, key_id: int) -> int | None:
    async with engine.connect() as conn:
        value = await conn.scalar(select(api_keys.c.account_id).where(api_keys.c.id == key_id))
    return None if value is None else int(value)


async def transactions_page(engine: AsyncEngine, account_id: int, limit: int,
                            offset: int) -> list[dict[str, Any]]:
    q = (select(wallet_transactions).where(wallet_transactions.c.account_id == account_id)
         .order_by(wallet_transactions.c.id.desc()).limit(limit).offset(offset))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).mappings().all()
    return [dict(r) for r in rows]


async def get_transaction(engine: AsyncEngine, txn_id: int) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(wallet_transactions)
                                  .where(wallet_transactions.c.id == txn_id))).mappings().first()
    return dict(row) if row else None

"""Consistent ledger snapshots for the shared reservers: each is ONE statement, so on
PostgreSQL (READ COMMITTED: one snapshot per statement) the numbers and the wallet version
come from the same instant. The wallet row is updated by every ledger batch that debits the
account, so its version orders a snapshot against those batches."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.store.schema import usage_records, wallet_transactions, wallets


async def wallet_counter(engine: AsyncEngine, account_id: int) -> tuple[int, int]:
    """(balance, version) of one wallet."""
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(wallets.c.balance_micro, wallets.c.version)
            .where(wallets.c.account_id == account_id)
        )).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def key_window_counter(engine: AsyncEngine, account_id: int, key_id: int,
                             window: str) -> tuple[int, int]:
    """(the key's recorded spend in ``window`` (a day or a month), the account's version)."""
    column = usage_records.c.day if len(window) == 10 else usage_records.c.month
    spent = (select(func.coalesce(func.sum(usage_records.c.cost_micro), 0))
             .where(usage_records.c.key_id == key_id, column == window).scalar_subquery())
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(spent, wallets.c.version).where(wallets.c.account_id == account_id)
        )).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def credits_since(engine: AsyncEngine, after_id: int,
                        lookback: int = 200) -> list[tuple[int, int, int]]:
    """Non-debit wallet transactions with id > after_id - lookback, as (id, account, wallet
    version now). The look-back catches transactions that committed out of id order."""
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(wallet_transactions.c.id, wallet_transactions.c.account_id,
                   wallets.c.version)
            .join(wallets, wallets.c.account_id == wallet_transactions.c.account_id)
            .where(wallet_transactions.c.id > after_id - lookback,
                   wallet_transactions.c.kind != "debit")
            .order_by(wallet_transactions.c.id)
        )).all()
    return [(int(i), int(a), int(v)) for i, a, v in rows]


async def top_transaction(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.max(wallet_transactions.c.id))) or 0)

"""Payments in the store, and ``apply_event``: the one path from a verified provider event to
the wallet.

Exactly once: the event's key (``pay_…:paid``, ``pay_…:refund:<total>``, ``dispute:<id>:…``)
is UNIQUE per provider in ``payment_events``, and the wallet transaction it writes carries a
request id derived from that key (``wallet_transactions.request_id`` is UNIQUE); both rows, the
wallet balance and the payment's status are written in ONE database transaction that first
locks the payment row. A second delivery of the same event (a provider retry, a replay, 50
concurrent copies, another replica) finds the key taken and changes nothing; if two race past
the check, the UNIQUE constraints roll the loser back.

Refunds and disputes are negative adjustments: the wallet may go below zero, and the reservers
then refuse further spend (the caller moves their counters, ``service.Payments``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from smartoken.money import MoneyError
from smartoken.payments.contract import (
    CURRENCY,
    Disputed,
    DisputeWon,
    Event,
    Expired,
    Paid,
    PaymentRef,
    Refunded,
    cents_to_micro,
)
from smartoken.store.payments_schema import payment_events, payments
from smartoken.store.repo import add_transaction, now
from smartoken.store.schema import accounts

PENDING, PAID, REFUNDED, PARTIAL_REFUND, DISPUTED, EXPIRED = (
    "pending", "paid", "refunded", "partially_refunded", "disputed", "expired")


class EventRefused(ValueError):
    """A verified event that does not match the payment it names (amount, currency, account),
    or that comes too early (a refund of a payment not yet credited): nothing is written and
    the webhook answers 400, so the provider retries (and the operator sees it)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Applied:
    """What an event did: ``txn_id`` is None when nothing was written (a duplicate delivery,
    an unknown payment, a refund total already counted)."""

    outcome: str  # credited | duplicate | unknown_payment | nothing_to_do | expired
    account_id: int | None = None
    amount_micro: int = 0
    txn_id: int | None = None
    payment_id: str | None = None


def new_payment_id() -> str:
    return "pay_" + secrets.token_hex(12)


def txn_request_id(provider: str, key: str) -> str:
    """The wallet transaction's request id (UNIQUE): derived from the event key, 35 chars."""
    return "pe_" + hashlib.sha256(f"{provider}|{key}".encode()).hexdigest()[:32]


async def create_payment(engine: AsyncEngine, account_id: int, provider: str,
                         amount_micro: int) -> str:
    pid = new_payment_id()
    async with engine.begin() as conn:
        await conn.execute(payments.insert().values(
            id=pid, account_id=account_id, provider=provider, checkout_id=None, charge_id=None,
            amount_micro=amount_micro, currency=CURRENCY, status=PENDING, refunded_micro=0,
            created_at=now(), paid_at=None))
    return pid


async def set_checkout(engine: AsyncEngine, payment_id: str, checkout_id: str | None,
                       failed: bool = False) -> None:
    values: dict[str, Any] = {"status": "failed"} if failed else {"checkout_id": checkout_id}
    async with engine.begin() as conn:
        await conn.execute(update(payments).where(payments.c.id == payment_id).values(**values))


async def get_payment(engine: AsyncEngine, payment_id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(payments).where(payments.c.id == payment_id))
               ).mappings().first()
    return dict(row) if row else None


async def find_payment(conn: AsyncConnection, provider: str, ref: PaymentRef) -> str | None:
    p = payments.c
    for column, value in ((p.id, ref.payment_id), (p.checkout_id, ref.checkout_id),
                          (p.charge_id, ref.charge_id)):
        if value:
            found = await conn.scalar(select(p.id).where(p.provider == provider,
                                                         column == value[:255]))
            if found is not None:
                return str(found)
    return None


def _micro(cents: int, currency: str) -> int:
    if currency.lower() != CURRENCY:
        raise EventRefused(f"currency {currency[:8]!r} is not USD", "currency_mismatch")
    try:
        return cents_to_micro(cents)
    except MoneyError:
        raise EventRefused("the event's amount is not a number of cents", "amount_invalid") \
            from None


async def apply_event(engine: AsyncEngine, provider: str, event: Event, event_id: str,
                      origin: str) -> Applied:
    """Turn one verified event into at most one wallet transaction (see the module doc)."""
    try:
        async with engine.begin() as conn:
            return await _apply(conn, provider, event, event_id, origin)
    except IntegrityError:  # a concurrent copy of this event committed first
        return Applied("duplicate")


async def _apply(conn: AsyncConnection, provider: str, event: Event, event_id: str,
                 origin: str) -> Applied:
    pid = await find_payment(conn, provider, event.ref)
    if pid is None:
        return Applied("unknown_payment")
    p = payments.c
    # Lock the payment row first (an UPDATE: a row lock on PostgreSQL, the write lock on
    # SQLite), so that copies of an event, and a refund racing its payment, run one by one.
    row = (await conn.execute(update(payments).where(p.id == pid).values(status=p.status)
                              .returning(*payments.c))).mappings().one()
    if isinstance(event, Expired):  # only a checkout still pending ends; money never moves
        if row["status"] != PENDING:
            return Applied("nothing_to_do", int(row["account_id"]), payment_id=pid)
        await conn.execute(update(payments).where(p.id == pid).values(status=EXPIRED))
        return Applied("expired", int(row["account_id"]), payment_id=pid)
    micro = _micro(event.cents, event.currency)
    amount = int(row["amount_micro"])
    values: dict[str, Any] = {}
    if isinstance(event, Paid):
        key, kind, delta, txn_kind = f"{pid}:paid", "paid", micro, "credit"
        if micro != amount:
            raise EventRefused(f"paid {micro} micro-USD for a payment of {amount}",
                               "amount_mismatch")
        if event.account_hint is not None and event.account_hint != str(row["account_id"]):
            raise EventRefused("the event names another account", "account_mismatch")
        if event.ref.checkout_id and row["checkout_id"] not in (None, event.ref.checkout_id):
            raise EventRefused("the event names another checkout", "checkout_mismatch")
        values = {"status": PAID if row["status"] in (PENDING, EXPIRED) else row["status"],
                  "paid_at": now(), "charge_id": row["charge_id"] or event.charge_id}
        reason = f"{provider} top-up {pid}"
    elif isinstance(event, Refunded):
        if row["paid_at"] is None:
            raise EventRefused("a refund of a payment not credited yet", "payment_not_paid")
        refunded = int(row["refunded_micro"])
        if event.cumulative:
            key, delta = f"{pid}:refund:{micro}", micro - refunded
        else:
            key, delta = f"{pid}:refund:{event.refund_id[:120]}", micro
        if await _seen(conn, provider, key):
            return Applied("duplicate", int(row["account_id"]), payment_id=pid)
        if delta <= 0 and micro <= amount:  # an older total, arriving after a newer one
            return Applied("nothing_to_do", int(row["account_id"]), payment_id=pid)
        if refunded + delta > amount:
            raise EventRefused("refunds exceed the payment", "refund_exceeds_payment")
        kind, txn_kind, delta = "refund", "adjustment", -delta
        values = {"refunded_micro": refunded - delta,
                  "status": REFUNDED if refunded - delta == amount else PARTIAL_REFUND}
        reason = f"{provider} refund of top-up {pid}"
    elif isinstance(event, Disputed):
        if row["paid_at"] is None:
            raise EventRefused("a dispute of a payment not credited yet", "payment_not_paid")
        if micro > amount:
            raise EventRefused("the dispute exceeds the payment", "amount_mismatch")
        key, kind, txn_kind, delta = f"dispute:{event.dispute_id[:120]}:opened", "dispute", \
            "adjustment", -micro
        values = {"status": DISPUTED}
        reason = f"{provider} dispute {event.dispute_id[:60]} of top-up {pid}"
    else:
        assert isinstance(event, DisputeWon)
        opened = await conn.scalar(select(payment_events.c.amount_micro).where(
            payment_events.c.provider == provider,
            payment_events.c.event_key == f"dispute:{event.dispute_id[:120]}:opened",
            payment_events.c.payment_id == pid))
        if opened is None:
            raise EventRefused("a dispute closed before it was seen opened", "dispute_unknown")
        key, kind, txn_kind, delta = f"dispute:{event.dispute_id[:120]}:won", "dispute_won", \
            "adjustment", -int(opened)
        values = {"status": REFUNDED if row["status"] == REFUNDED else PAID}
        reason = f"{provider} dispute {event.dispute_id[:60]} won: top-up {pid} restored"
    if await _seen(conn, provider, key):
        return Applied("duplicate", int(row["account_id"]), payment_id=pid)
    account_id = int(row["account_id"])
    txn_id = await add_transaction(conn, account_id, txn_kind, delta, actor=provider,
                                   reason=reason, request_id=txn_request_id(provider, key),
                                   origin=origin)
    await conn.execute(payment_events.insert().values(
        provider=provider, event_key=key, payment_id=pid, account_id=account_id, kind=kind,
        amount_micro=delta, provider_event_id=event_id[:255], txn_id=txn_id, created_at=now()))
    await conn.execute(update(payments).where(p.id == pid).values(**values))
    return Applied("credited", account_id, delta, txn_id, pid)


async def _seen(conn: AsyncConnection, provider: str, key: str) -> bool:
    count = await conn.scalar(select(func.count()).select_from(payment_events).where(
        payment_events.c.provider == provider, payment_events.c.event_key == key))
    assert count is not None  # COUNT(*) always returns a row
    return count > 0


# ---------------------------------------------------------------- receipts


async def account_receipts(engine: AsyncEngine, account_id: int,
                           limit: int = 50) -> list[dict[str, Any]]:
    """The account's payment events (top-ups, refunds, disputes), newest first."""
    e, p = payment_events.c, payments.c
    q = (select(e.id, e.kind, e.amount_micro, e.created_at, e.provider, e.payment_id,
                p.checkout_id, p.charge_id, p.amount_micro.label("payment_micro"), p.status)
         .join(payments, p.id == e.payment_id).where(e.account_id == account_id)
         .order_by(e.id.desc()).limit(limit))
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(q)).mappings().all()]


async def receipt(engine: AsyncEngine, account_id: int, number: int) -> dict[str, Any] | None:
    """One receipt, only for its own account (another account's number is not found)."""
    e, p = payment_events.c, payments.c
    q = (select(e.id, e.kind, e.amount_micro, e.created_at, e.provider, e.payment_id,
                e.provider_event_id, e.txn_id, p.checkout_id, p.charge_id,
                p.amount_micro.label("payment_micro"), p.created_at.label("payment_created"),
                p.status, accounts.c.name.label("account_name"), e.account_id)
         .join(payments, p.id == e.payment_id).join(accounts, accounts.c.id == e.account_id)
         .where(e.id == number, e.account_id == account_id))
    async with engine.connect() as conn:
        row = (await conn.execute(q)).mappings().first()
    return dict(row) if row else None


async def account_payments(engine: AsyncEngine, account_id: int,
                           limit: int = 20) -> list[dict[str, Any]]:
    q = (select(payments).where(payments.c.account_id == account_id)
         .order_by(payments.c.created_at.desc()).limit(limit))
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(q)).mappings().all()]

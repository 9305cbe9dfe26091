"""Online top-ups (migration 0025_payments): each checkout started, and each verified provider
event that moved a wallet. Money columns are integer micro-USD."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from smartoken.store.schema import metadata

# One row per checkout: created pending when the user starts it; ``paid_at`` once a verified
# event credited it. ``checkout_id`` is the provider's session / order id, ``charge_id`` its
# payment intent / capture id (what refunds and disputes name).
payments = Table(
    "payments",
    metadata,
    Column("id", String(40), primary_key=True),  # pay_…
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("provider", String(16), nullable=False),
    Column("checkout_id", String(255), nullable=True),
    Column("charge_id", String(255), nullable=True),
    Column("amount_micro", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),  # pending | paid | refunded | disputed | failed
    Column("refunded_micro", BigInteger, nullable=False, default=0, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("paid_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("provider", "checkout_id", name="uq_payments_provider_checkout"),
    Index("ix_payments_provider_charge", "provider", "charge_id"),
)

# One row per wallet movement a provider event caused: UNIQUE (provider, event_key) and the
# wallet transaction's unique request_id, written in one database transaction, make a second
# delivery of the same event (a retry, a replay, a concurrent copy on another replica) a no-op.
# The row id is the receipt number.
payment_events = Table(
    "payment_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("event_key", String(200), nullable=False),  # pay_…:paid, pay_…:refund:…, dispute:…
    Column("payment_id", String(40), ForeignKey("payments.id"), nullable=False, index=True),
    Column("account_id", Integer, nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # paid | refund | dispute | dispute_won
    Column("amount_micro", BigInteger, nullable=False),  # signed, as applied to the wallet
    Column("provider_event_id", String(255), nullable=False, default=""),
    Column("txn_id", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("provider", "event_key", name="uq_payment_events_key"),
)

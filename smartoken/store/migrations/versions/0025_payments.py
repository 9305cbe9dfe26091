"""payments: online top-ups (Stripe, PayPal) and the provider events that moved a wallet

Revision ID: 0025_payments
Revises: 0024_signup
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_payments"
down_revision = "0024_signup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("checkout_id", sa.String(255), nullable=True),
        sa.Column("charge_id", sa.String(255), nullable=True),
        sa.Column("amount_micro", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("refunded_micro", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("provider", "checkout_id", name="uq_payments_provider_checkout"),
    )
    op.create_index("ix_payments_account_id", "payments", ["account_id"])
    op.create_index("ix_payments_provider_charge", "payments", ["provider", "charge_id"])
    op.create_table(
        "payment_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("payment_id", sa.String(40), sa.ForeignKey("payments.id"), nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_micro", sa.BigInteger, nullable=False),
        sa.Column("provider_event_id", sa.String(255), nullable=False, server_default=""),
        sa.Column("txn_id", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider", "event_key", name="uq_payment_events_key"),
    )
    op.create_index("ix_payment_events_payment_id", "payment_events", ["payment_id"])
    op.create_index("ix_payment_events_account_id", "payment_events", ["account_id"])


def downgrade() -> None:
    op.drop_table("payment_events")
    op.drop_table("payments")

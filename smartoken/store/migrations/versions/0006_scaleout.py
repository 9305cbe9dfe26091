"""scale-out: wallet version counter and database-level reservations

``wallets.version`` is bumped by every change of the balance (debit batches and credits); it
orders a counter snapshot loaded into Redis against ledger batches committed meanwhile.
``reservations`` holds the in-flight reservations of the database-level reserver (several
workers on one host without Redis).

Revision ID: 0006_scaleout
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_scaleout"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wallets") as batch:
        batch.add_column(sa.Column("version", sa.BigInteger, nullable=False,
                                   server_default="0"))
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(40), primary_key=True),  # the request id
        sa.Column("account_id", sa.Integer, nullable=False, index=True),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("amount_micro", sa.BigInteger, nullable=False),
        sa.Column("settled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("deadline", sa.Float, nullable=False, index=True),
        sa.Column("holder", sa.String(40), nullable=False),
    )
    op.create_index("ix_reservations_key_day", "reservations", ["key_id", "day"])
    op.create_index("ix_reservations_key_month", "reservations", ["key_id", "month"])


def downgrade() -> None:
    op.drop_table("reservations")
    with op.batch_alter_table("wallets") as batch:
        batch.drop_column("version")

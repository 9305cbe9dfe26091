"""ledger dead letters: usage records the database refused even alone

Revision ID: 0013_dead_letters
Revises: 0020_audit
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_dead_letters"
down_revision = "0020_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(40), nullable=False, index=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("origin", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_dead_letters")

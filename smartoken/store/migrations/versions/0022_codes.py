"""codes: redemption codes (stored as SHA-256 hashes) and failed redemptions (throttling)

Revision ID: 0022_codes
Revises: 0018_refused
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_codes"
down_revision = "0018_refused"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "redemption_codes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch", sa.String(100), nullable=False, server_default=""),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(8), nullable=False),
        sa.Column("amount_micro", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redeemed_by", sa.Integer, nullable=True),
        sa.Column("transaction_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_redemption_codes_batch", "redemption_codes", ["batch"])
    op.create_index("ix_redemption_codes_redeemed_by", "redemption_codes", ["redeemed_by"])
    op.create_table(
        "redemption_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_redemption_failures_account_at", "redemption_failures",
                    ["account_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_redemption_failures_account_at", "redemption_failures")
    op.drop_table("redemption_failures")
    op.drop_index("ix_redemption_codes_redeemed_by", "redemption_codes")
    op.drop_index("ix_redemption_codes_batch", "redemption_codes")
    op.drop_table("redemption_codes")

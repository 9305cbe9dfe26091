"""signup: accounts get an email (unique, stored lower-cased) and when it was verified; invite
codes for the ``invite`` sign-up policy (only their SHA-256 is kept)

Revision ID: 0024_signup
Revises: 0023_alerts
"""

import sqlalchemy as sa
from alembic import op

revision = "0024_signup"
down_revision = "0023_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("email", sa.String(320), nullable=True))
        batch.add_column(sa.Column("email_verified_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.create_unique_constraint("uq_accounts_email", ["email"])
    op.create_table(
        "invite_codes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("note", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.Integer, sa.ForeignKey("accounts.id"), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("invite_codes")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint("uq_accounts_email", type_="unique")
        batch.drop_column("email_verified_at")
        batch.drop_column("email")

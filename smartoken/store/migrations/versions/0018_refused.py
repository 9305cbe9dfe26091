"""refused: requests refused before routing (no usage record), for the console's usage log

Revision ID: 0018_refused
Revises: 0021_accounts
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_refused"
down_revision = "0021_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refused_requests",
        sa.Column("id", sa.String(64), primary_key=True),  # the request id
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.Integer, nullable=True),  # null: no valid key
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("path", sa.String(200), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("message", sa.String(500), nullable=False),
    )
    op.create_index("ix_refused_requests_account_created", "refused_requests",
                    ["account_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_refused_requests_account_created", "refused_requests")
    op.drop_table("refused_requests")

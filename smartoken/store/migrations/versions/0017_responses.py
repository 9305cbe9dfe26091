"""responses: stored Responses API answers (previous_response_id, GET/DELETE /v1/responses)

Revision ID: 0017_responses
Revises: 0012_catalog
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_responses"
down_revision = "0012_catalog"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False, index=True),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("history", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("stored_responses")

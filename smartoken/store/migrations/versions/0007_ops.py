"""stored providers: upstreams managed through the admin API, secrets encrypted at rest

Revision ID: 0007_ops
Revises: 0004_console
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_ops"
down_revision = "0004_console"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stored_providers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("dialect", sa.String(40), nullable=False),
        sa.Column("base_url", sa.String(500), nullable=False),
        sa.Column("api_key_enc", sa.Text, nullable=True),
        sa.Column("headers_enc", sa.Text, nullable=True),
        sa.Column("timeouts", sa.Text, nullable=True),
        sa.Column("routes", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stored_providers")

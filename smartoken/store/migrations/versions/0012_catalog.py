"""catalog: cache-write token counts on usage records; imported catalog documents

Revision ID: 0012_catalog
Revises: 0006_scaleout
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_catalog"
down_revision = "0006_scaleout"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("cache_write_tokens", sa.Integer, nullable=False,
                                             server_default="0"))
    op.create_table(
        "catalog_documents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("catalog_documents")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("cache_write_tokens")

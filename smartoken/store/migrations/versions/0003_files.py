"""files: metadata of the Files API (the bytes live in the blob store)

Revision ID: 0003_files
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_files"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("media_type", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=True),
        sa.Column("text_chars", sa.Integer, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_files_account_id", "files", ["account_id"])
    op.create_index("ix_files_sha256", "files", ["sha256"])
    op.create_index("ix_files_text_sha256", "files", ["text_sha256"])
    op.create_index("ix_files_account_purpose", "files", ["account_id", "purpose"])


def downgrade() -> None:
    op.drop_table("files")

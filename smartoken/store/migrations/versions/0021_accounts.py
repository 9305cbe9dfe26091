"""accounts: an admin can disable an account (its keys and console sessions stop working)

Revision ID: 0021_accounts
Revises: 0013_dead_letters
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_accounts"
down_revision = "0013_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("disabled_at", sa.DateTime(timezone=True),
                                        nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("disabled_at")

"""admin keys: admin authority is a property of a key created as one (issue 12 item 5)

Existing unrestricted keys of admin accounts become admin keys, so an upgrade keeps working
clients working; restricted keys (families, budgets, rpm/tpm, expiry) never do.

Revision ID: 0015_admin_keys
Revises: 0016_protocol
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_admin_keys"
down_revision = "0016_protocol"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("admin", sa.Boolean, nullable=False,
                                        server_default=sa.false()))
    op.execute(
        "UPDATE api_keys SET admin = TRUE WHERE families IS NULL AND daily_budget_micro IS NULL"
        " AND monthly_budget_micro IS NULL AND rpm IS NULL AND tpm IS NULL"
        " AND expires_at IS NULL AND account_id IN (SELECT id FROM accounts"
        " WHERE role = 'admin')")


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("admin")

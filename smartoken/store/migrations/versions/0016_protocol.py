"""protocol: the client protocol each usage record came in by

Revision ID: 0016_protocol
Revises: 0017_responses
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_protocol"
down_revision = "0017_responses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("protocol", sa.String(20), nullable=False,
                                             server_default="chat"))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("protocol")

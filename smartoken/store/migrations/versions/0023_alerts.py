"""alerts: per-account alert settings and the alerts fired (once per subject, kind, threshold
and period: a unique key claimed before sending)

Revision ID: 0023_alerts
Revises: 0022_codes
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_alerts"
down_revision = "0022_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_settings",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("low_balance_micro", sa.BigInteger, nullable=True),
        sa.Column("key_percents", sa.String(40), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("email_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("webhook_url", sa.String(2000), nullable=True),
        sa.Column("webhook_secret", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("subject", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("threshold", sa.BigInteger, nullable=False),
        sa.Column("period", sa.String(40), nullable=False),
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("value_micro", sa.BigInteger, nullable=False),
        sa.Column("limit_micro", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("email_to", sa.String(320), nullable=True),
        sa.Column("email_state", sa.String(10), nullable=False),
        sa.Column("webhook_url", sa.String(2000), nullable=True),
        sa.Column("webhook_state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("done", sa.Boolean, nullable=False),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("subject", "kind", "threshold", "period",
                            name="uq_alert_events_once"),
    )
    op.create_index("ix_alert_events_account_created", "alert_events",
                    ["account_id", "created_at"])
    op.create_index("ix_alert_events_due", "alert_events", ["done", "next_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_events_due", "alert_events")
    op.drop_index("ix_alert_events_account_created", "alert_events")
    op.drop_table("alert_events")
    op.drop_table("alert_settings")

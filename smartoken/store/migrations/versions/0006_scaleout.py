"""scale-out: wallet version counter and database-level reservations

``wallets.version`` is bumped by every change of the balance (debit batches and credits); it
orders a counter snapshot loaded into Redis against ledger batches committed meanwhile.
``reservations`` holds the in-flight reservations of the database-level reserver (several
workers on one host without Redis), ``key_spend`` its running per-key spend per window.

Revision ID: 0006_scaleout
Revises: 0007_ops
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_scaleout"
down_revision = "0007_ops"
branch_labels = None
depends_on = None

# PostgreSQL only: the database-level reserver's check-and-insert as one server-side call, so
# the wallet row lock is held for a few statements, never across client round trips.
RESERVE_FUNCTION = """
CREATE OR REPLACE FUNCTION st_reserve(
    p_id text, p_account integer, p_key integer, p_day text, p_month text, p_amount bigint,
    p_daily bigint, p_monthly bigint, p_deadline double precision, p_holder text)
RETURNS TABLE (verdict text, amount bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_balance bigint;
    v_held bigint;
    v_spent bigint;
    v_used bigint;
    v_window text;
    v_limit bigint;
    v_label text;
BEGIN
    -- The lock: every reservation and ledger batch of the account queues here. Each later
    -- statement of this VOLATILE function reads a fresh snapshot, taken after the lock.
    SELECT balance_micro INTO v_balance FROM wallets WHERE account_id = p_account FOR UPDATE;
    SELECT COALESCE(SUM(r.amount_micro), 0) INTO v_held
        FROM reservations r WHERE r.account_id = p_account;
    IF COALESCE(v_balance, 0) - v_held < p_amount THEN
        RETURN QUERY SELECT 'wallet'::text, COALESCE(v_balance, 0) - v_held;
        RETURN;
    END IF;
    FOR i IN 1..2 LOOP
        IF i = 1 THEN v_window := p_day; v_limit := p_daily; v_label := 'daily';
        ELSE v_window := p_month; v_limit := p_monthly; v_label := 'monthly';
        END IF;
        CONTINUE WHEN v_limit IS NULL;
        SELECT spent_micro INTO v_spent FROM key_spend
            WHERE key_id = p_key AND period = v_window;
        IF NOT FOUND THEN
            IF i = 1 THEN
                SELECT COALESCE(SUM(cost_micro), 0) INTO v_spent FROM usage_records
                    WHERE key_id = p_key AND day = v_window;
            ELSE
                SELECT COALESCE(SUM(cost_micro), 0) INTO v_spent FROM usage_records
                    WHERE key_id = p_key AND month = v_window;
            END IF;
            INSERT INTO key_spend (key_id, period, spent_micro) VALUES (p_key, v_window, v_spent);
        END IF;
        IF i = 1 THEN
            SELECT v_spent + COALESCE(SUM(r.amount_micro), 0) INTO v_used
                FROM reservations r WHERE r.key_id = p_key AND r.day = v_window;
        ELSE
            SELECT v_spent + COALESCE(SUM(r.amount_micro), 0) INTO v_used
                FROM reservations r WHERE r.key_id = p_key AND r.month = v_window;
        END IF;
        IF v_used + p_amount > v_limit THEN
            RETURN QUERY SELECT v_label, v_used;
            RETURN;
        END IF;
    END LOOP;
    INSERT INTO reservations (id, account_id, key_id, day, month, amount_micro, settled,
                              deadline, holder)
        VALUES (p_id, p_account, p_key, p_day, p_month, p_amount, false, p_deadline, p_holder);
    RETURN QUERY SELECT 'ok'::text, 0::bigint;
END;
$$;
"""

DROP_RESERVE_FUNCTION = "DROP FUNCTION IF EXISTS st_reserve(text, integer, integer, text, " \
    "text, bigint, bigint, bigint, double precision, text)"


def upgrade() -> None:
    with op.batch_alter_table("wallets") as batch:
        batch.add_column(sa.Column("version", sa.BigInteger, nullable=False,
                                   server_default="0"))
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(40), primary_key=True),  # the request id
        sa.Column("account_id", sa.Integer, nullable=False, index=True),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("amount_micro", sa.BigInteger, nullable=False),
        sa.Column("settled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("deadline", sa.Float, nullable=False, index=True),
        sa.Column("holder", sa.String(40), nullable=False),
    )
    op.create_index("ix_reservations_key_day", "reservations", ["key_id", "day"])
    op.create_index("ix_reservations_key_month", "reservations", ["key_id", "month"])
    op.create_table(
        "key_spend",
        sa.Column("key_id", sa.Integer, primary_key=True),
        sa.Column("period", sa.String(10), primary_key=True),
        sa.Column("spent_micro", sa.BigInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(RESERVE_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP_RESERVE_FUNCTION)
    op.drop_table("key_spend")
    op.drop_table("reservations")
    with op.batch_alter_table("wallets") as batch:
        batch.drop_column("version")

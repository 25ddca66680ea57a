"""risk domain changes (rules, cases, windows, appeals)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("risk_case", sa.Column("anchor", sa.String(length=200), nullable=True))
    # "is a case for this rule and card/sponsor already open?" on every finding of a scan
    op.create_index(
        "ix_risk_case_rule_anchor",
        "risk_case",
        ["rule", "anchor"],
        postgresql_where=sa.text("status = 'open'"),
    )
    # the circuit breaker counts a rule's automatic holds of the last hour
    op.create_index(
        "ix_hold_rule_started",
        "hold",
        ["rule_name", "started_at"],
        postgresql_where=sa.text("source_type = 'rule'"),
    )
    # a window's holds are stamped lifted (end job, cancel) by window id
    op.create_index(
        "ix_hold_window",
        "hold",
        ["maintenance_window_id"],
        postgresql_where=sa.text("maintenance_window_id IS NOT NULL"),
    )
    # forfeit_due: confirmed holds whose money is not settled yet
    op.create_index(
        "ix_hold_forfeit_due",
        "hold",
        ["forfeit_at"],
        postgresql_where=sa.text("forfeit_at IS NOT NULL AND money_settled_at IS NULL"),
    )
    # per-order cycle checks follow "bought with this distributor's device" edges: without it each
    # step of the walk scans all orders (buyer_ref and buyer_payment are indexed by the orders domain)
    op.create_index(
        "ix_orders_buyer_device",
        "orders",
        ["buyer_device_hash"],
        postgresql_where=sa.text("buyer_device_hash IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_buyer_device", table_name="orders")
    op.drop_index("ix_hold_forfeit_due", table_name="hold")
    op.drop_index("ix_hold_window", table_name="hold")
    op.drop_index("ix_hold_rule_started", table_name="hold")
    op.drop_index("ix_risk_case_rule_anchor", table_name="risk_case")
    op.drop_column("risk_case", "anchor")

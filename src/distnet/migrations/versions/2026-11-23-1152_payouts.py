"""payouts domain changes (settlement, payouts, repayments)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settlement_partition",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("partition_no", sa.BigInteger(), nullable=False),
        sa.Column("lo", sa.BigInteger(), nullable=False),
        sa.Column("hi", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("moved", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("withheld", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("amount", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("netted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending','done')", name=op.f("ck_settlement_partition_status")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["settlement_run.id"], name=op.f("fk_settlement_partition_run_id_settlement_run")
        ),
        sa.PrimaryKeyConstraint("run_id", "partition_no", name=op.f("pk_settlement_partition")),
    )
    # at most one settlement run in progress: a second trigger joins or resumes it
    op.create_index(
        "uq_settlement_run_running",
        "settlement_run",
        ["status"],
        unique=True,
        postgresql_where=sa.text("status = 'running'"),
    )
    # settlement partitions select due pending commissions by beneficiary range; without this
    # every partition would walk the whole due set of ix_commission_pending_due
    op.create_index(
        "ix_commission_pending_beneficiary",
        "commission",
        ["beneficiary_id", "hold_until"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    # marking a paid payout's commissions: a distributor's available ones up to the run's cutoff
    op.create_index(
        "ix_commission_available_beneficiary",
        "commission",
        ["beneficiary_id", "available_at"],
        postgresql_where=sa.text("status = 'available'"),
    )
    op.create_index(
        "ix_payout_item_reserved",
        "payout_item",
        ["distributor_id"],
        postgresql_where=sa.text("status = 'reserved'"),
    )
    op.create_index("ix_repayment_distributor", "repayment", ["distributor_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_repayment_distributor", table_name="repayment")
    op.drop_index("ix_payout_item_reserved", table_name="payout_item")
    op.drop_index("ix_commission_available_beneficiary", table_name="commission")
    op.drop_index("ix_commission_pending_beneficiary", table_name="commission")
    op.drop_index("uq_settlement_run_running", table_name="settlement_run")
    op.drop_table("settlement_partition")

"""money domain changes (orders, commissions, ledger, ranks)

Revision ID: 0002
Revises: 0001

* ``sales_daily``: per distributor and day sales (personal, team) for rank thresholds.
* the default commission plan, version 1, effective since 2000-01-01, so that orders are
  attributed from the first day; operators add versions with ``POST /commission-plans``.
* an index for the postings of one commission (explain, verify).
* the ledger trigger locks FOR NO KEY UPDATE; the platform ``commission_expense`` balance is
  applied at commit (``ledger_balance_pending`` + a deferred constraint trigger), not per statement.
"""

import sqlalchemy as sa
from alembic import op

from distnet.migrate import sql_source

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DEFAULT_RATES = {  # level -> rank -> basis points
    1: {"member": 1000, "silver": 1200, "gold": 1500, "platinum": 2000},
    2: {"member": 300, "silver": 400, "gold": 500, "platinum": 600},
    3: {"member": 100, "silver": 150, "gold": 200, "platinum": 250},
}


def upgrade() -> None:
    # queued balance deltas, applied at commit (migrations/sql/ledger_apply_pending_balance)
    op.create_table(
        "ledger_balance_pending",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_balance_pending")),
    )
    op.execute(sql_source("ledger_apply_pending_balance", "0002"))
    op.execute(sql_source("ledger_apply_postings", "0002"))
    op.create_table(
        "sales_daily",
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("personal", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("team", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("distributor_id", "day", name=op.f("pk_sales_daily")),
    )
    op.create_index(
        "ix_ledger_posting_commission",
        "ledger_posting",
        ["commission_id"],
        postgresql_where=sa.text("commission_id IS NOT NULL"),
    )
    op.execute(sql_source("distnet_try_timestamptz", "0002"))
    op.create_index("ix_commission_plan_effective", "commission_plan", ["effective_from", "version"])
    op.execute(
        """
        INSERT INTO commission_plan (version, name, max_levels, hold_days, min_order_amount,
                                     excluded_categories, effective_from, created_by)
        VALUES (1, 'default three-level plan', 3, 15, 0, '{}', '2000-01-01T00:00:00Z', 'migration 0002')
        """
    )
    values = ", ".join(
        f"({level}, '{rank}', {bps})" for level, ranks in DEFAULT_RATES.items() for rank, bps in ranks.items()
    )
    op.execute(
        f"""
        INSERT INTO commission_rate (plan_id, level, rank, rate_bps)
        SELECT p.id, r.level, r.rank, r.bps FROM commission_plan p, (VALUES {values}) AS r(level, rank, bps)
         WHERE p.version = 1
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION ledger_apply_postings() CASCADE")  # and its trigger, which 0001's file creates
    op.execute(sql_source("ledger_apply_postings", "0001"))
    op.execute("DROP TABLE IF EXISTS ledger_balance_pending")
    op.execute("DROP FUNCTION IF EXISTS ledger_apply_pending_balance()")
    op.execute(
        "DELETE FROM commission_rate WHERE plan_id IN (SELECT id FROM commission_plan WHERE version = 1)"
    )
    op.execute("DELETE FROM commission_plan WHERE version = 1")
    op.drop_index("ix_commission_plan_effective", table_name="commission_plan")
    op.execute("DROP FUNCTION IF EXISTS distnet_try_timestamptz(text)")
    op.drop_index("ix_ledger_posting_commission", table_name="ledger_posting")
    op.drop_table("sales_daily")

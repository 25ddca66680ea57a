"""order ingest without hot rows: insert-only sales deltas; fact tables without per-row FK checks

1. ``sales_delta``: order ingest and refunds append (distributor, day, personal, team) rows
   instead of upserting ``sales_daily``. The upsert locked the seller's and every ancestor's row
   for the day until commit, so every concurrent order writer queued on the root's row. Readers
   sum both tables; ``ranks.service.fold_sales`` moves deltas into ``sales_daily`` in one
   statement (scheduler job ``fold_sales`` and before each rank evaluation).

2. ``orders``, ``commission`` and ``ledger_posting`` lose their foreign keys. A foreign key check runs one query per
   inserted row and KEY SHARE-locks the parent row (a MultiXact on hot parents such as the root
   distributor, locked by every concurrent order): measured 2.6 s of a 4.6 s insert of 100k orders
   and 3.3 s of a 9.0 s insert of 300k commissions; 54 of 376 ms of a 1,000-order batch's
   attribution went to the two checks of its 2,042 postings. What the keys guaranteed is kept by:
   - every writer joins the parents in the same statement (an order's card and seller are looked
     up, attribution joins distributor, plan and hold), so no row is written with a dangling id;
   - the parents are never deleted (distributors and cards are closed or cancelled, plans are
     versioned, holds are lifted, accounts and ledger transactions are permanent): a trigger now
     refuses DELETE on them, and on orders and commissions (postings were append-only already);
   - ``ledger verify`` checks every reference (check ``fact_references``).

3. Credits to distributors' ``pending`` and ``withheld`` accounts (commission accrual) are
   applied at commit, like the platform ``commission_expense`` account since 0002: the statement
   trigger queues them in ``ledger_balance_pending`` (insert only, no lock) and the deferred
   trigger applies them. Before, the trigger locked every beneficiary's pending account from
   attribution until commit, and orders whose three levels shared a beneficiary (everyone under
   one busy sponsor) queued behind each other. A credit cannot take a balance below zero, so it
   needs no lock to be checked against; debits (settlement, reversals, payouts) still lock and
   apply at once. Committed balances still equal the sum of postings.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from distnet.migrate import sql_source

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FOREIGN_KEYS = (
    ("orders", "fk_orders_card_id_card", "card_id", "card"),
    ("orders", "fk_orders_seller_id_distributor", "seller_id", "distributor"),
    ("commission", "fk_commission_order_id_orders", "order_id", "orders"),
    ("commission", "fk_commission_beneficiary_id_distributor", "beneficiary_id", "distributor"),
    ("commission", "fk_commission_plan_id_commission_plan", "plan_id", "commission_plan"),
    ("commission", "fk_commission_withheld_hold_id_hold", "withheld_hold_id", "hold"),
    ("ledger_posting", "fk_ledger_posting_account_id_ledger_account", "account_id", "ledger_account"),
    (
        "ledger_posting",
        "fk_ledger_posting_transaction_id_ledger_transaction",
        "transaction_id",
        "ledger_transaction",
    ),
)

# Every transaction that accrues commissions inserts and deletes rows here: vacuum it often.
PENDING_AUTOVACUUM = (
    "ALTER TABLE ledger_balance_pending SET (autovacuum_vacuum_threshold = 1000, "
    "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000)"
)


def upgrade() -> None:
    op.create_table(
        "sales_delta",
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("personal", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("team", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.create_index("ix_sales_delta_distributor_day", "sales_delta", ["distributor_id", "day"])
    for table, name, _, _ in FOREIGN_KEYS:
        op.drop_constraint(name, table, type_="foreignkey")
    op.execute(sql_source("ledger_apply_postings", "0005"))
    op.execute(sql_source("ledger_apply_pending_balance", "0005"))
    op.execute(PENDING_AUTOVACUUM)
    op.execute(sql_source("distnet_refuse_delete", "0005"))  # and a trigger on each parent table


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION ledger_apply_pending_balance() CASCADE"
    )  # and its trigger, which 0002's file creates
    op.execute(sql_source("ledger_apply_pending_balance", "0002"))
    op.execute(
        "ALTER TABLE ledger_balance_pending RESET (autovacuum_vacuum_threshold, "
        "autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_threshold)"
    )
    op.execute(sql_source("ledger_apply_postings", "0002"))  # only commission_expense is applied at commit
    op.execute("DROP FUNCTION distnet_refuse_delete() CASCADE")  # and its triggers
    for table, name, column, parent in FOREIGN_KEYS:
        op.create_foreign_key(name, table, parent, [column], ["id"])
    op.execute(
        """
        INSERT INTO sales_daily (distributor_id, day, personal, team)
        SELECT distributor_id, day, sum(personal), sum(team) FROM sales_delta GROUP BY 1, 2
        ON CONFLICT (distributor_id, day) DO UPDATE
           SET personal = sales_daily.personal + EXCLUDED.personal, team = sales_daily.team + EXCLUDED.team
        """
    )
    op.drop_table("sales_delta")

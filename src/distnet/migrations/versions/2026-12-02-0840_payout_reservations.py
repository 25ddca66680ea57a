"""payout items record the commissions they reserved

Revision ID: 0010
Revises: 0040

* ``payout_item_commission(item_id, commission_id, amount)``: exactly which commissions an item
  reserved and how much of the item each carries (they sum to the item's amount). Paid results
  mark only these commissions ``paid``, failed results and cancellations return only these to
  ``available`` (the old rule, "every available commission up to the run's cutoff", marked another
  run's commissions paid). No foreign keys, like the other fact tables (migration 0005): the
  parents are never deleted and ``ledger verify`` checks the references.
* commission status ``reserved``: in an open payout item.
* Open items of existing runs are linked to their distributors' available commissions, as a new
  run would link them (see ``payouts.repository.RESERVE_COMMISSIONS``). Items that already have a
  result are left unlinked: which commissions the old rule marked cannot be told apart.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0040"
branch_labels = None
depends_on = None

STATUSES_OLD = "status IN ('pending','available','withheld','paid','forfeited','reversed')"
STATUSES_NEW = "status IN ('pending','available','withheld','reserved','paid','forfeited','reversed')"


def upgrade() -> None:
    op.create_table(
        "payout_item_commission",
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("commission_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_payout_item_commission_amount_not_negative")),
        sa.PrimaryKeyConstraint("item_id", "commission_id", name=op.f("pk_payout_item_commission")),
    )
    # a commission's latest item (its current reservation or the item that paid it)
    op.create_index(
        "ix_payout_item_commission_commission", "payout_item_commission", ["commission_id", "item_id"]
    )
    op.drop_constraint(op.f("ck_commission_status"), "commission", type_="check")
    op.create_check_constraint(op.f("ck_commission_status"), "commission", sa.text(STATUSES_NEW))
    op.execute(
        """
        WITH alloc AS (
            SELECT i.id AS item_id, c.id AS commission_id, i.amount AS item_amount,
                   c.amount - c.reversed AS net,
                   coalesce(sum(c.amount - c.reversed) OVER w_before, 0) AS before,
                   row_number() OVER w_desc = 1 AS last
              FROM payout_item i
              JOIN commission c ON c.beneficiary_id = i.distributor_id AND c.status = 'available'
              JOIN orders o ON o.id = c.order_id AND o.currency = i.currency
             WHERE i.status = 'reserved'
            WINDOW w_before AS (PARTITION BY i.id ORDER BY c.available_at, c.id
                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                   w_desc AS (PARTITION BY i.id ORDER BY c.available_at DESC, c.id DESC)
        ), ins AS (
            INSERT INTO payout_item_commission (item_id, commission_id, amount)
            SELECT item_id, commission_id,
                   CASE WHEN last THEN greatest(item_amount - before, 0)
                        ELSE greatest(least(net, item_amount - before), 0) END
              FROM alloc
            RETURNING commission_id
        )
        UPDATE commission SET status = 'reserved' WHERE id IN (SELECT commission_id FROM ins)
        """
    )


def downgrade() -> None:
    op.execute("UPDATE commission SET status = 'available' WHERE status = 'reserved'")
    op.drop_constraint(op.f("ck_commission_status"), "commission", type_="check")
    op.create_check_constraint(op.f("ck_commission_status"), "commission", sa.text(STATUSES_OLD))
    op.drop_index("ix_payout_item_commission_commission", table_name="payout_item_commission")
    op.drop_table("payout_item_commission")

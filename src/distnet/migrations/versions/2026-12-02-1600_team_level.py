"""team_level: members and net sales per (ancestor, depth), maintained from the closure and orders

Team stats of a 200k-member team counted 200k closure rows and joined their orders on every
request (issue 19: 63 ms p99 over HTTP). ``team_level`` holds the answer per (ancestor, depth);
writers append to ``team_level_delta`` (statement triggers on ``distributor_closure`` and
``orders``: every path that changes the forest or an order's net amount, set-based), the
``fold_team`` job moves the deltas into ``team_level``, and a read sums both. Backfilled here in
one statement from the closure and each member's orders.

Revision ID: 0150
Revises: 0160
"""

import sqlalchemy as sa
from alembic import op

from distnet.migrate import sql_source

revision = "0150"
down_revision = "0160"
branch_labels = None
depends_on = None

BACKFILL = """
    INSERT INTO team_level (ancestor_id, depth, members, sales)
    SELECT c.ancestor_id, c.depth, count(*), coalesce(sum(s.net), 0)
      FROM distributor_closure c
      LEFT JOIN (SELECT seller_id, sum(amount - refunded_amount) AS net FROM orders GROUP BY 1) s
        ON s.seller_id = c.descendant_id
     GROUP BY 1, 2
"""


def upgrade() -> None:
    op.create_table(
        "team_level",
        sa.Column("ancestor_id", sa.BigInteger(), nullable=False),
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("members", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("sales", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("ancestor_id", "depth", name=op.f("pk_team_level")),
    )
    op.create_table(
        "team_level_delta",
        sa.Column("ancestor_id", sa.BigInteger(), nullable=False),
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("members", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("sales", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.create_index("ix_team_level_delta_ancestor", "team_level_delta", ["ancestor_id", "depth"])
    # every fold deletes what was appended: vacuum it often
    op.execute(
        "ALTER TABLE team_level_delta SET (autovacuum_vacuum_threshold = 1000, "
        "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000)"
    )
    op.execute("LOCK TABLE distributor_closure, orders IN SHARE MODE")
    op.execute(BACKFILL)
    op.execute(sql_source("distnet_team_closure", "0150"))
    op.execute(sql_source("distnet_team_orders", "0150"))


def downgrade() -> None:
    op.execute("DROP FUNCTION distnet_team_orders() CASCADE")
    op.execute("DROP FUNCTION distnet_team_closure() CASCADE")
    op.drop_table("team_level_delta")
    op.drop_table("team_level")

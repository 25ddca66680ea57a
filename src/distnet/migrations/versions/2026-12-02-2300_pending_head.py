"""one deferred apply per posting statement, not per queued balance row

Revision ID: 0170
Revises: 0150

ledger_balance_pending gets ``head`` (the first row a statement queues), and the deferred
constraint trigger fires only for head rows: at commit a 1,000-order batch made about 3,000
calls of ledger_apply_pending_balance (one did the work, the others found their row gone), a
single order about six. The function itself is unchanged: its first call applies the whole
transaction's queue.
"""

import sqlalchemy as sa
from alembic import op

from distnet.migrate import sql_source

revision = "0170"
down_revision = "0150"
branch_labels = None
depends_on = None

_TRIGGER = (
    "CREATE CONSTRAINT TRIGGER ledger_balance_pending_apply AFTER INSERT ON ledger_balance_pending "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW {when}EXECUTE FUNCTION ledger_apply_pending_balance()"
)


def upgrade() -> None:
    # the queue is empty outside a transaction that posts: adding the column rewrites nothing
    op.add_column(
        "ledger_balance_pending", sa.Column("head", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.execute("DROP TRIGGER ledger_balance_pending_apply ON ledger_balance_pending")
    op.execute(_TRIGGER.format(when="WHEN (NEW.head) "))
    op.execute(sql_source("ledger_apply_postings", "0170"))


def downgrade() -> None:
    op.execute(sql_source("ledger_apply_postings", "0110"))
    op.execute("DROP TRIGGER ledger_balance_pending_apply ON ledger_balance_pending")
    op.execute(_TRIGGER.format(when=""))
    op.drop_column("ledger_balance_pending", "head")

"""one lock order for every writer: distributors' accounts by id, then platform accounts

Revision ID: 0011
Revises: 0010

The ledger trigger and the deferred apply at commit lock accounts ordered by (platform?, id):
every distributor account before any platform account, so the commission_expense row (locked
only at commit) is always the last lock a transaction takes. See ARCHITECTURE.md, "Lock order".
"""

from alembic import op

from distnet.migrate import sql_source

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sql_source("ledger_apply_postings", "0011"))
    op.execute(sql_source("ledger_apply_pending_balance", "0011"))


def downgrade() -> None:
    op.execute(sql_source("ledger_apply_postings", "0005"))
    op.execute(sql_source("ledger_apply_pending_balance", "0005"))

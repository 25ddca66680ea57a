"""ledger_apply_postings computes each account's sum once, not three times

Revision ID: 0180
Revises: 0170

The posting trigger grouped the statement's postings by account and joined ledger_account in
each of its three statements (lock, apply at once, queue). The sums now go through arrays, and
the lock and the immediate apply run only when some account is not queued. A statement of 1,000
queued credits (a batch's points) took 12.4-13.6 ms instead of 16.1-17.2 ms, one of 1,000
debits 16.4-16.9 ms instead of 18.6-19.7 ms (BENCHMARKS.md, issue 19).
"""

from alembic import op

from distnet.migrate import sql_source

revision = "0180"
down_revision = "0170"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sql_source("ledger_apply_postings", "0180"))


def downgrade() -> None:
    op.execute(sql_source("ledger_apply_postings", "0170"))

"""ledger, audit, orders and commissions refuse TRUNCATE

Revision ID: 0012
Revises: 0011

Postings were append-only row by row (no UPDATE, no DELETE) but ``TRUNCATE ledger_posting`` went
through. A statement-level BEFORE TRUNCATE trigger now refuses it on ``ledger_posting``,
``ledger_transaction``, ``ledger_account``, ``audit_log``, ``orders`` and ``commission``. The bypass
is ``SET session_replication_role = replica``, which the application's (non-superuser) role cannot
set; the test suite's reset between tests uses it (README, Tests).
"""

from alembic import op

from distnet.migrate import sql_source

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sql_source("distnet_refuse_truncate", "0012"))


def downgrade() -> None:
    op.execute("DROP FUNCTION distnet_refuse_truncate() CASCADE")  # and its triggers

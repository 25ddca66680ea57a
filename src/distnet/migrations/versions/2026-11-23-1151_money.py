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

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DEFAULT_RATES = {  # level -> rank -> basis points
    1: {"member": 1000, "silver": 1200, "gold": 1500, "platinum": 2000},
    2: {"member": 300, "silver": 400, "gold": 500, "platinum": 600},
    3: {"member": 100, "silver": 150, "gold": 200, "platinum": 250},
}


# The 0001 trigger locked accounts FOR UPDATE. The foreign key check of ledger_posting.account_id
# takes FOR KEY SHARE on the same accounts first, row by row in posting order, and FOR UPDATE
# conflicts with KEY SHARE: two concurrent postings to overlapping accounts deadlocked (seen with
# concurrent order batches). FOR NO KEY UPDATE (what the balance UPDATE takes anyway) still
# serialises writers in id order but does not conflict with the foreign key checks.
LEDGER_TRIGGER_NO_KEY = """
CREATE OR REPLACE FUNCTION ledger_apply_postings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_postings GROUP BY transaction_id HAVING sum(amount) <> 0) THEN
    RAISE EXCEPTION 'unbalanced ledger transaction' USING ERRCODE = '23514';
  END IF;
  PERFORM 1 FROM ledger_account
   WHERE id IN (SELECT DISTINCT account_id FROM new_postings)
     AND NOT (distributor_id IS NULL AND kind = 'commission_expense')
   ORDER BY id FOR NO KEY UPDATE;
  UPDATE ledger_account a SET balance = a.balance + s.total
    FROM (SELECT account_id, sum(amount) AS total FROM new_postings GROUP BY account_id) s
   WHERE a.id = s.account_id AND NOT (a.distributor_id IS NULL AND a.kind = 'commission_expense');
  INSERT INTO ledger_balance_pending (account_id, amount)
  SELECT a.id, s.total
    FROM (SELECT account_id, sum(amount) AS total FROM new_postings GROUP BY account_id) s
    JOIN ledger_account a ON a.id = s.account_id
   WHERE a.distributor_id IS NULL AND a.kind = 'commission_expense'
   ORDER BY a.id;
  RETURN NULL;
END $$;
"""

# The platform commission_expense account is posted to by every order and every refund. Updating
# its balance in the statement trigger locked that one row from the first order of a transaction
# until its commit and serialised all order writers (batches, single orders, imports). Its deltas
# are queued in ledger_balance_pending instead (insert only, no lock) and applied by a DEFERRED
# constraint trigger, i.e. at COMMIT: the row is locked only while the transaction commits, and
# committed balances still equal the sum of postings. Inside an uncommitted transaction that posted
# to it, the stored expense balance lags its postings until commit. Nothing may lock the expense
# row earlier in a transaction (a committing writer waits for it while holding its other locks).
PENDING_BALANCE = """
CREATE TABLE ledger_balance_pending (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id bigint NOT NULL,
  amount bigint NOT NULL
);
CREATE FUNCTION ledger_apply_pending_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE ledger_account SET balance = balance + NEW.amount WHERE id = NEW.account_id;
  DELETE FROM ledger_balance_pending WHERE id = NEW.id;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_balance_pending_apply AFTER INSERT ON ledger_balance_pending
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_apply_pending_balance();
"""


def upgrade() -> None:
    op.execute(PENDING_BALANCE)
    op.execute(LEDGER_TRIGGER_NO_KEY)
    op.create_table(
        "sales_daily",
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("personal", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("team", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("distributor_id", "day", name=op.f("pk_sales_daily")),
    )
    op.create_index(
        "ix_ledger_posting_commission", "ledger_posting", ["commission_id"],
        postgresql_where=sa.text("commission_id IS NOT NULL"),
    )
    # CSV import: a bad timestamp marks its row as an error instead of failing the whole COPY batch
    op.execute(
        """
        CREATE FUNCTION distnet_try_timestamptz(value text) RETURNS timestamptz
        LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
          RETURN value::timestamptz;
        EXCEPTION WHEN others THEN
          RETURN NULL;
        END $$
        """
    )
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
    op.execute(LEDGER_TRIGGER_NO_KEY.split("  INSERT INTO ledger_balance_pending")[0]
               .replace("\n     AND NOT (distributor_id IS NULL AND kind = 'commission_expense')", "")
               .replace(" AND NOT (a.distributor_id IS NULL AND a.kind = 'commission_expense')", "")
               + "  RETURN NULL;\nEND $$;\n")
    op.execute("DROP TABLE IF EXISTS ledger_balance_pending")
    op.execute("DROP FUNCTION IF EXISTS ledger_apply_pending_balance()")
    op.execute("DELETE FROM commission_rate WHERE plan_id IN (SELECT id FROM commission_plan WHERE version = 1)")
    op.execute("DELETE FROM commission_plan WHERE version = 1")
    op.drop_index("ix_commission_plan_effective", table_name="commission_plan")
    op.execute("DROP FUNCTION IF EXISTS distnet_try_timestamptz(text)")
    op.drop_index("ix_ledger_posting_commission", table_name="ledger_posting")
    op.drop_table("sales_daily")

-- At commit, the transaction's queued credits are applied at once, locking the accounts in the one
-- lock order of every writer: distributors' accounts by id, then the platform accounts (the
-- commission_expense row, which only this function locks) last. A writer holding beneficiaries'
-- accounts (a refund) therefore takes the expense row last, and a committing order holding the
-- expense row never waits for anything after it: no cycle (before, the expense row came first by
-- its low id and a refund's commit and an order's commit deadlocked).
CREATE OR REPLACE FUNCTION ledger_apply_pending_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ledger_balance_pending WHERE id = NEW.id) THEN
    RETURN NULL;
  END IF;
  -- this transaction's rows are NEW.id and later (the first call is for its first row): a range
  -- on the key, not a scan of the table and the dead rows every transaction leaves behind
  PERFORM 1 FROM ledger_account
   WHERE id IN (SELECT account_id FROM ledger_balance_pending WHERE id >= NEW.id)
   ORDER BY distributor_id IS NULL, id FOR NO KEY UPDATE;
  WITH d AS (DELETE FROM ledger_balance_pending WHERE id >= NEW.id RETURNING account_id, amount)
  UPDATE ledger_account a SET balance = a.balance + s.total
    FROM (SELECT account_id, sum(amount) AS total FROM d GROUP BY account_id) s
   WHERE a.id = s.account_id;
  RETURN NULL;
END $$;

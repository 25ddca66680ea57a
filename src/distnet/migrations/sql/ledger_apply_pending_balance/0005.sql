-- 0002 applied each queued delta in its own row-trigger call (an UPDATE and a DELETE per account:
-- a batch of 1,000 orders has about 2,000) and locked the accounts in no particular order across
-- statements. Now the first call at commit applies all of the transaction's deltas at once,
-- locking the accounts in id order; the later calls find their row gone. Other transactions'
-- queued rows are invisible here (uncommitted) and never outlive their own commit.
CREATE OR REPLACE FUNCTION ledger_apply_pending_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ledger_balance_pending WHERE id = NEW.id) THEN
    RETURN NULL;
  END IF;
  -- this transaction's rows are NEW.id and later (the first call is for its first row): a range
  -- on the key, not a scan of the table and the dead rows every transaction leaves behind
  PERFORM 1 FROM ledger_account
   WHERE id IN (SELECT account_id FROM ledger_balance_pending WHERE id >= NEW.id)
   ORDER BY id FOR NO KEY UPDATE;
  WITH d AS (DELETE FROM ledger_balance_pending WHERE id >= NEW.id RETURNING account_id, amount)
  UPDATE ledger_account a SET balance = a.balance + s.total
    FROM (SELECT account_id, sum(amount) AS total FROM d GROUP BY account_id) s
   WHERE a.id = s.account_id;
  RETURN NULL;
END $$;

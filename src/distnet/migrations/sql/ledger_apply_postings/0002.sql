-- 0001 locked accounts FOR UPDATE. The foreign key check of ledger_posting.account_id takes FOR
-- KEY SHARE on the same accounts first, row by row in posting order, and FOR UPDATE conflicts with
-- KEY SHARE: two concurrent postings to overlapping accounts deadlocked (seen with concurrent order
-- batches). FOR NO KEY UPDATE (what the balance UPDATE takes anyway) still serialises writers in
-- id order but does not conflict with the foreign key checks.
--
-- The platform commission_expense account is posted to by every order and every refund. Updating
-- its balance here locked that one row from the first order of a transaction until its commit and
-- serialised all order writers. Its deltas are queued in ledger_balance_pending instead (insert
-- only, no lock) and applied at commit (ledger_apply_pending_balance).
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

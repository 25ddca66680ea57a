-- 0170 (issue 19): the first row each statement queues is its `head`, and only a head row queues
-- the deferred apply (ledger_balance_pending_apply ... WHEN (NEW.head)). The apply was a deferred
-- event per queued row: at commit a batch of 1,000 orders ran about 3,000 calls of
-- ledger_apply_pending_balance, the first doing the work and each other one an index probe to
-- find its row gone; now one call per posting statement (a single order: one). Rows are queued
-- in account id order, so the head has the statement's lowest queue id, and the first call at
-- commit still applies every row of the transaction (ids from its own and later). Otherwise as
-- 0110: points (issue 18) are a second asset in the same ledger (currency PTS); credits to
-- distributors' pending, withheld and points accounts and every posting to the platform
-- commission_expense and points_issued accounts are queued here (insert only, no lock) and
-- applied at commit; debits and the other credits lock (distributors' accounts by id, then the
-- platform's) and apply at once.
CREATE OR REPLACE FUNCTION ledger_apply_postings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_postings GROUP BY transaction_id HAVING sum(amount) <> 0) THEN
    RAISE EXCEPTION 'unbalanced ledger transaction' USING ERRCODE = '23514';
  END IF;
  PERFORM 1 FROM ledger_account WHERE id IN (SELECT id FROM (SELECT a.id, s.total, (a.distributor_id IS NULL AND a.kind IN ('commission_expense', 'points_issued'))
                    OR (a.distributor_id IS NOT NULL AND a.kind IN ('pending', 'withheld', 'points') AND s.total > 0) AS deferred
               FROM (SELECT account_id, sum(amount) AS total FROM new_postings GROUP BY account_id) s
               JOIN ledger_account a ON a.id = s.account_id) n WHERE NOT deferred)
   ORDER BY distributor_id IS NULL, id FOR NO KEY UPDATE;
  UPDATE ledger_account a SET balance = a.balance + n.total FROM (SELECT a.id, s.total, (a.distributor_id IS NULL AND a.kind IN ('commission_expense', 'points_issued'))
                    OR (a.distributor_id IS NOT NULL AND a.kind IN ('pending', 'withheld', 'points') AND s.total > 0) AS deferred
               FROM (SELECT account_id, sum(amount) AS total FROM new_postings GROUP BY account_id) s
               JOIN ledger_account a ON a.id = s.account_id) n WHERE a.id = n.id AND NOT n.deferred;
  INSERT INTO ledger_balance_pending (account_id, amount, head) SELECT id, total, row_number() OVER (ORDER BY id) = 1 FROM (SELECT a.id, s.total, (a.distributor_id IS NULL AND a.kind IN ('commission_expense', 'points_issued'))
                    OR (a.distributor_id IS NOT NULL AND a.kind IN ('pending', 'withheld', 'points') AND s.total > 0) AS deferred
               FROM (SELECT account_id, sum(amount) AS total FROM new_postings GROUP BY account_id) s
               JOIN ledger_account a ON a.id = s.account_id) n WHERE deferred ORDER BY id;
  RETURN NULL;
END $$;

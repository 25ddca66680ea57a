-- Credits to distributors' pending and withheld accounts (commission accrual) are applied at
-- commit too, like the platform commission_expense account since 0002: they are queued in
-- ledger_balance_pending (insert only, no lock) and ledger_apply_pending_balance applies them.
-- Before, this trigger locked every beneficiary's pending account from attribution until commit,
-- and orders whose three levels shared a beneficiary queued behind each other. A credit cannot
-- take a balance below zero, so it needs no lock to be checked against; debits (settlement,
-- reversals, payouts) still lock, in account id order, and apply at once.
CREATE OR REPLACE FUNCTION ledger_apply_postings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_postings GROUP BY transaction_id HAVING sum(amount) <> 0) THEN
    RAISE EXCEPTION 'unbalanced ledger transaction' USING ERRCODE = '23514';
  END IF;
  PERFORM 1 FROM ledger_account WHERE id IN (SELECT id FROM (SELECT a.id, s.total, (a.distributor_id IS NULL AND a.kind = 'commission_expense')
                    OR (a.distributor_id IS NOT NULL AND a.kind IN ('pending', 'withheld') AND s.total > 0) AS deferred
               FROM (SELECT account_id, sum(amount) AS total FROM new_postings GROUP BY account_id) s
               JOIN ledger_account a ON a.id = s.account_id) n WHERE NOT deferred)
   ORDER BY id FOR NO KEY UPDATE;
  UPDATE ledger_account a SET balance = a.balance + n.total FROM (SELECT a.id, s.total, (a.distributor_id IS NULL AND a.kind = 'commission_expense')
                    OR (a.distributor_id IS NOT NULL AND a.kind IN ('pending', 'withheld') AND s.total > 0) AS deferred
               FROM (SELECT account_id, sum(amount) AS total FROM new_postings GROUP BY account_id) s
               JOIN ledger_account a ON a.id = s.account_id) n WHERE a.id = n.id AND NOT n.deferred;
  INSERT INTO ledger_balance_pending (account_id, amount) SELECT id, total FROM (SELECT a.id, s.total, (a.distributor_id IS NULL AND a.kind = 'commission_expense')
                    OR (a.distributor_id IS NOT NULL AND a.kind IN ('pending', 'withheld') AND s.total > 0) AS deferred
               FROM (SELECT account_id, sum(amount) AS total FROM new_postings GROUP BY account_id) s
               JOIN ledger_account a ON a.id = s.account_id) n WHERE deferred ORDER BY id;
  RETURN NULL;
END $$;

-- Points (issue 18) are a second asset in the same ledger (currency PTS). Like commissions, the
-- points an order earns are credits that cannot take a balance below zero, and every order posts
-- to one platform account: credits to a member's `points` account and every posting to the
-- platform `points_issued` account are queued and applied at commit with the commission ones
-- (ledger_apply_pending_balance 0011), so concurrent orders do not queue on `points_issued`.
-- One lock order for every writer (ARCHITECTURE.md, "Lock order"): distributors' accounts in id
-- order, then platform accounts in id order; commission_expense is queued and locked only at
-- commit, after everything else (ledger_apply_pending_balance 0011). Before, the platform accounts
-- came first or anywhere by their id, and a committing order (expense first, then a beneficiary's
-- pending account) deadlocked with a refund holding that beneficiary's accounts and waiting for
-- the expense row at its own commit.
-- Credits to distributors' pending and withheld accounts and every posting to commission_expense
-- are queued in ledger_balance_pending (insert only, no lock); debits and the other credits lock
-- and apply at once.
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
  INSERT INTO ledger_balance_pending (account_id, amount) SELECT id, total FROM (SELECT a.id, s.total, (a.distributor_id IS NULL AND a.kind IN ('commission_expense', 'points_issued'))
                    OR (a.distributor_id IS NOT NULL AND a.kind IN ('pending', 'withheld', 'points') AND s.total > 0) AS deferred
               FROM (SELECT account_id, sum(amount) AS total FROM new_postings GROUP BY account_id) s
               JOIN ledger_account a ON a.id = s.account_id) n WHERE deferred ORDER BY id;
  RETURN NULL;
END $$;

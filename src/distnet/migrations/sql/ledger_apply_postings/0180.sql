-- 0180 (issue 19): each account's sum and whether it is queued are computed once, not three times.
-- 0170 grouped the statement's postings by account and joined ledger_account in each of its three
-- statements (lock, apply, queue): for a 1,000-order batch's two posting statements, about 2,400
-- account probes done three times over. The sums go through arrays now, and the lock and the
-- immediate apply run only when some account is not queued (a batch's postings are all queued: credits
-- to pending and points, the platform's expense and points issued). Otherwise as 0170: the first
-- row each statement queues is its `head`; credits to distributors' pending, withheld and points
-- accounts and every posting to the platform commission_expense and points_issued accounts are
-- queued (insert only, no lock) and applied at commit; debits and the other credits lock
-- (distributors' accounts by id, then the platform's) and apply at once.
CREATE OR REPLACE FUNCTION ledger_apply_postings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[];
  totals bigint[];
  queued boolean[];
BEGIN
  IF EXISTS (SELECT 1 FROM new_postings GROUP BY transaction_id HAVING sum(amount) <> 0) THEN
    RAISE EXCEPTION 'unbalanced ledger transaction' USING ERRCODE = '23514';
  END IF;
  SELECT array_agg(a.id ORDER BY a.id), array_agg(s.total ORDER BY a.id),
         array_agg((a.distributor_id IS NULL AND a.kind IN ('commission_expense', 'points_issued'))
                   OR (a.distributor_id IS NOT NULL AND a.kind IN ('pending', 'withheld', 'points') AND s.total > 0)
                   ORDER BY a.id)
    INTO ids, totals, queued
    FROM (SELECT account_id, sum(amount)::bigint AS total FROM new_postings GROUP BY account_id) s
    JOIN ledger_account a ON a.id = s.account_id;
  IF false = ANY (queued) THEN
    PERFORM 1 FROM ledger_account
     WHERE id IN (SELECT n.id FROM unnest(ids, queued) AS n(id, queued) WHERE NOT n.queued)
     ORDER BY distributor_id IS NULL, id FOR NO KEY UPDATE;
    UPDATE ledger_account a SET balance = a.balance + n.total
      FROM unnest(ids, totals, queued) AS n(id, total, queued)
     WHERE a.id = n.id AND NOT n.queued;
  END IF;
  INSERT INTO ledger_balance_pending (account_id, amount, head)
  SELECT n.id, n.total, row_number() OVER (ORDER BY n.id) = 1
    FROM unnest(ids, totals, queued) AS n(id, total, queued)
   WHERE n.queued ORDER BY n.id;
  RETURN NULL;
END $$;

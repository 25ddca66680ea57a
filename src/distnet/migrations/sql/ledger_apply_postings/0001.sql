-- Balances are maintained by one statement-level trigger so that a bulk INSERT ... SELECT of
-- postings updates each account once per statement; it also refuses any transaction whose
-- postings do not sum to zero. The postings of one transaction are always inserted by one
-- statement (ledger.service).
CREATE FUNCTION ledger_apply_postings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_postings GROUP BY transaction_id HAVING sum(amount) <> 0) THEN
    RAISE EXCEPTION 'unbalanced ledger transaction' USING ERRCODE = '23514';
  END IF;
  -- lock accounts in id order first: concurrent statements touching the same accounts
  -- (the platform expense account, a busy sponsor) then queue instead of deadlocking
  PERFORM 1 FROM ledger_account
   WHERE id IN (SELECT DISTINCT account_id FROM new_postings) ORDER BY id FOR UPDATE;
  UPDATE ledger_account a SET balance = a.balance + s.total
    FROM (SELECT account_id, sum(amount) AS total FROM new_postings GROUP BY account_id) s
   WHERE a.id = s.account_id;
  RETURN NULL;
END $$;
CREATE TRIGGER ledger_posting_apply AFTER INSERT ON ledger_posting
  REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION ledger_apply_postings();

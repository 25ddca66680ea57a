-- Deltas queued in ledger_balance_pending are applied by a DEFERRED constraint trigger, i.e. at
-- COMMIT: the account row is locked only while the transaction commits, and committed balances
-- still equal the sum of postings. Inside an uncommitted transaction that queued deltas, the
-- stored balance lags its postings until commit. Nothing may lock a deferred account earlier in a
-- transaction (a committing writer waits for it while holding its other locks).
CREATE FUNCTION ledger_apply_pending_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE ledger_account SET balance = balance + NEW.amount WHERE id = NEW.account_id;
  DELETE FROM ledger_balance_pending WHERE id = NEW.id;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_balance_pending_apply AFTER INSERT ON ledger_balance_pending
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_apply_pending_balance();

-- Append-only really: TRUNCATE fires no row or DELETE trigger, so the money and audit tables
-- refuse it with a statement-level BEFORE TRUNCATE trigger. The only way past it is
-- session_replication_role = replica (ordinary triggers do not fire), which only a superuser (or a
-- role granted SET on it) can set: the test suite's reset between tests and the benchmarks' scratch
-- databases use it; the application's role cannot.
CREATE FUNCTION distnet_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE is refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ledger_posting_never_truncated BEFORE TRUNCATE ON ledger_posting
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_truncate();
CREATE TRIGGER ledger_transaction_never_truncated BEFORE TRUNCATE ON ledger_transaction
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_truncate();
CREATE TRIGGER ledger_account_never_truncated BEFORE TRUNCATE ON ledger_account
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_truncate();
CREATE TRIGGER audit_log_never_truncated BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_truncate();
CREATE TRIGGER orders_never_truncated BEFORE TRUNCATE ON orders
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_truncate();
CREATE TRIGGER commission_never_truncated BEFORE TRUNCATE ON commission
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_truncate();

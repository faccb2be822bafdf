-- Reverse of 0016: drop its triggers (the foreign keys come back through the migration's AlterFields).
DROP TRIGGER IF EXISTS obligation_referenced_guard ON auth_user;
DROP TRIGGER IF EXISTS obligation_referenced_guard ON corporates_enterprise;
DROP FUNCTION IF EXISTS hl_obligation_referenced_guard();
DROP TRIGGER IF EXISTS obligation_references_changed ON settlement_obligation;
DROP FUNCTION IF EXISTS hl_obligation_references_changed();
DROP TRIGGER IF EXISTS obligation_references ON settlement_obligation;
DROP FUNCTION IF EXISTS hl_obligations_references();

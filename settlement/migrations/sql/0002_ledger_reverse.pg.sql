DROP FUNCTION IF EXISTS hl_ledger_post(text, text, text, text, text, jsonb, bigint, bigint[], bigint[], text[]);
DROP TRIGGER IF EXISTS posting_balanced ON settlement_posting;
DROP FUNCTION IF EXISTS hl_ledger_postings_balanced();
DROP TRIGGER IF EXISTS posting_immutable ON settlement_posting;
DROP TRIGGER IF EXISTS journalentry_immutable ON settlement_journalentry;
DROP FUNCTION IF EXISTS hl_ledger_immutable();

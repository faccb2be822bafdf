DROP FUNCTION IF EXISTS hl_ledger_post_batch(text, text);
DROP FUNCTION IF EXISTS hl_ledger_transfer_hash(text, bigint, bigint, text, bigint);

-- Reverse of 0014: drop its triggers and restore 0002's posting_balanced check
-- (the foreign keys come back through the migration's AlterField operations).
DROP TRIGGER IF EXISTS journalentry_reversal_target ON settlement_journalentry;
DROP FUNCTION IF EXISTS hl_ledger_reversal_target();
DROP TRIGGER IF EXISTS account_guard ON settlement_account;
DROP FUNCTION IF EXISTS hl_ledger_account_guard();

CREATE OR REPLACE FUNCTION hl_ledger_postings_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_entry bigint;
BEGIN
    SELECT n.entry_id INTO v_entry
      FROM new_postings n
     GROUP BY n.entry_id, n.currency
    HAVING sum(n.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'hl_ledger:entry_unbalanced:%', v_entry;
    END IF;
    SELECT n.entry_id INTO v_entry
      FROM new_postings n JOIN settlement_account a ON a.id = n.account_id
     WHERE a.currency <> n.currency
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'hl_ledger:currency_mismatch:%', v_entry;
    END IF;
    RETURN NULL;
END $$;

-- Referential integrity of the journal, proven once per statement instead of
-- once per row.
--
-- Until 0014 a posting carried two deferred foreign keys (its entry, its
-- account) and an entry one more (the entry it reverses). PostgreSQL checks a
-- foreign key with one query per inserted row at commit, each locking the
-- referenced row: measured (backend CPU, 300,000 two-leg entries), 12 s of
-- checks at commit against 10 s for the inserts themselves; for a netting
-- batch of 707,000 entries that was most of its commit. The same guarantees
-- now hold with set-based checks:
--
-- * every posting's entry exists: checked for the whole statement by the
--   posting_balanced statement trigger; entries are never updated or
--   deleted (journalentry_immutable), so an entry that exists stays;
-- * every posting's account exists and is in the posting's currency, in the
--   same trigger, which then locks those accounts FOR KEY SHARE until commit,
--   as a foreign key's check does (the ledger's own paths already hold them
--   FOR NO KEY UPDATE); an account with postings cannot be deleted nor change
--   its id (account_guard), so an account that is referenced stays;
-- * a reversal's original exists: a row trigger that fires for reversals
--   only (reverses_id set), not for every entry.
--
-- The statement triggers fire at the end of each INSERT (not deferred to
-- commit): every writer inserts an entry before its postings. Violations
-- raise SQLSTATE 23503 (foreign_key_violation), as a foreign key would.

-- The planner knows how many rows a transition table holds but nothing of
-- their values, so each check below aggregates first (a hash over the
-- statement's rows, once) and then looks up the few resulting keys, rather
-- than probing an index once per posting.
CREATE OR REPLACE FUNCTION hl_ledger_postings_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_entry bigint;
    v_account bigint;
    v_code text;
    v_first bigint;
    v_last bigint;
    v_entries bigint;
BEGIN
    -- Each entry sums to zero per currency.
    SELECT n.entry_id INTO v_entry
      FROM new_postings n
     GROUP BY n.entry_id, n.currency
    HAVING sum(n.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'hl_ledger:entry_unbalanced:%', v_entry;
    END IF;

    -- Every posting's entry exists. A statement's entries are usually a run
    -- of consecutive ids (one post, one batch): when every id between the
    -- lowest and the highest is an entry, all of them exist, and one range
    -- count proves it. Otherwise (ids interleaved with other transactions'),
    -- each distinct entry is looked up.
    SELECT min(n.entry_id), max(n.entry_id) INTO v_first, v_last FROM new_postings n;
    SELECT count(*) INTO v_entries FROM settlement_journalentry e WHERE e.id BETWEEN v_first AND v_last;
    IF v_entries <> v_last - v_first + 1 THEN
        SELECT d.entry_id INTO v_entry
          FROM (SELECT DISTINCT n.entry_id FROM new_postings n) d
         WHERE NOT EXISTS (SELECT 1 FROM settlement_journalentry e WHERE e.id = d.entry_id)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'hl_ledger:entry_not_found:%', v_entry USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;

    -- Every posting's account exists and is in the posting's currency.
    SELECT u.account_id, CASE WHEN a.id IS NULL THEN 'account_not_found' ELSE 'currency_mismatch' END
      INTO v_account, v_code
      FROM (SELECT n.account_id, min(n.currency) AS low, max(n.currency) AS high
              FROM new_postings n GROUP BY n.account_id) u
      LEFT JOIN settlement_account a ON a.id = u.account_id
     WHERE a.id IS NULL OR a.currency <> u.low OR a.currency <> u.high
     ORDER BY u.account_id
     LIMIT 1;
    IF v_code = 'account_not_found' THEN
        RAISE EXCEPTION 'hl_ledger:account_not_found:%', v_account USING ERRCODE = 'foreign_key_violation';
    ELSIF v_code IS NOT NULL THEN
        SELECT n.entry_id INTO v_entry FROM new_postings n
         WHERE n.account_id = v_account
           AND n.currency <> (SELECT a.currency FROM settlement_account a WHERE a.id = v_account)
         ORDER BY n.entry_id LIMIT 1;
        RAISE EXCEPTION 'hl_ledger:currency_mismatch:%', v_entry;
    END IF;

    -- Hold the accounts until commit, as a foreign key's check would (the
    -- ledger's own paths already hold them FOR NO KEY UPDATE).
    PERFORM 1
       FROM settlement_account a
      WHERE a.id IN (SELECT DISTINCT n.account_id FROM new_postings n)
      ORDER BY a.id
        FOR KEY SHARE;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION hl_ledger_account_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'DELETE' OR NEW.id <> OLD.id)
       AND EXISTS (SELECT 1 FROM settlement_posting p WHERE p.account_id = OLD.id) THEN
        RAISE EXCEPTION 'hl_ledger:account_has_postings:%', OLD.id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER account_guard BEFORE DELETE OR UPDATE OF id ON settlement_account
    FOR EACH ROW EXECUTE FUNCTION hl_ledger_account_guard();

CREATE OR REPLACE FUNCTION hl_ledger_reversal_target() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM settlement_journalentry e WHERE e.id = NEW.reverses_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hl_ledger:entry_not_found:%', NEW.reverses_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER journalentry_reversal_target BEFORE INSERT ON settlement_journalentry
    FOR EACH ROW WHEN (NEW.reverses_id IS NOT NULL) EXECUTE FUNCTION hl_ledger_reversal_target();

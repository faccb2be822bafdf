-- The ledger's batch-posting path: many two-leg transfers in a few set-based
-- statements, with the invariants of hl_ledger_post (0002_ledger.pg.sql).
-- Called by settlement.ledger.batch only.

-- 1. The content hash of a two-leg transfer, byte for byte the one that
-- settlement.ledger.services.content_hash computes in Python
-- (sha256 of {"kind":…,"reverses":null,"legs":[[account,currency,amount],…]}
-- with the legs sorted by account id), so that the single-entry service and
-- the batch path replay each other's keys.
CREATE OR REPLACE FUNCTION hl_ledger_transfer_hash(
    p_kind text, p_debit bigint, p_credit bigint, p_currency text, p_amount bigint
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(
        '{"kind":"' || p_kind || '","reverses":null,"legs":[' ||
        CASE WHEN p_debit < p_credit
             THEN '[' || p_debit || ',"' || p_currency || '",' || p_amount || '],['
                  || p_credit || ',"' || p_currency || '",' || (-p_amount) || ']'
             ELSE '[' || p_credit || ',"' || p_currency || '",' || (-p_amount) || '],['
                  || p_debit || ',"' || p_currency || '",' || p_amount || ']'
        END || ']}', 'UTF8')), 'hex')
$$;

-- 2. Post every transfer staged in the session's temporary table
-- hl_ledger_batch (created and filled by settlement.ledger.batch):
--   n bigint, idempotency_key text, content_hash text, debit_account_id bigint,
--   credit_account_id bigint, currency text, amount bigint, metadata jsonb.
--
-- Returns one row (status, account_id, created, replayed). status is 'created'
-- on success (created = entries written, replayed = keys already posted with
-- the same content, skipped); otherwise the code of the refusal
-- (entry_invalid, idempotency_conflict, account_not_found,
-- currency_mismatch, account_frozen, insufficient_funds) and nothing has been
-- written: every check runs before the first write, so the caller's
-- transaction stays usable.
--
-- Locks: every touched account FOR NO KEY UPDATE in primary-key order, as
-- hl_ledger_post does. Funds: each account's balance after the whole batch
-- must stay >= 0 (the batch is one atomic change; the CHECK constraint on
-- settlement_account enforces it again). Each entry sums to zero by
-- construction and the posting_balanced statement trigger checks it again
-- over the inserted postings.
CREATE OR REPLACE FUNCTION hl_ledger_post_batch(p_kind text, p_memo text)
RETURNS TABLE (status text, account_id bigint, created bigint, replayed bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_bad record;
    v_created bigint;
    v_replayed bigint;
BEGIN
    IF EXISTS (
        SELECT 1 FROM hl_ledger_batch b
         WHERE b.amount IS NULL OR b.amount <= 0
            OR b.debit_account_id IS NULL OR b.credit_account_id IS NULL
            OR b.debit_account_id = b.credit_account_id
            OR b.idempotency_key IS NULL OR length(b.idempotency_key) NOT BETWEEN 1 AND 255
    ) OR EXISTS (
        SELECT 1 FROM hl_ledger_batch b GROUP BY b.idempotency_key HAVING count(*) > 1
    ) THEN
        RETURN QUERY SELECT 'entry_invalid'::text, NULL::bigint, 0::bigint, 0::bigint;
        RETURN;
    END IF;

    -- Idempotency: a key seen with other content is a conflict (nothing
    -- written); a key seen with the same content is a replay and is skipped.
    IF EXISTS (
        SELECT 1 FROM hl_ledger_batch b
          JOIN settlement_journalentry e ON e.idempotency_key = b.idempotency_key
         WHERE e.content_hash <> b.content_hash
    ) THEN
        RETURN QUERY SELECT 'idempotency_conflict'::text, NULL::bigint, 0::bigint, 0::bigint;
        RETURN;
    END IF;
    DELETE FROM hl_ledger_batch b
     USING settlement_journalentry e
     WHERE e.idempotency_key = b.idempotency_key;
    GET DIAGNOSTICS v_replayed = ROW_COUNT;

    CREATE TEMP TABLE IF NOT EXISTS hl_ledger_batch_delta (
        account_id bigint PRIMARY KEY,
        currency text NOT NULL,
        mixed boolean NOT NULL,
        amount bigint NOT NULL,
        debited boolean NOT NULL
    ) ON COMMIT DELETE ROWS;
    TRUNCATE hl_ledger_batch_delta;
    INSERT INTO hl_ledger_batch_delta (account_id, currency, mixed, amount, debited)
    SELECT l.account_id, min(l.currency), min(l.currency) <> max(l.currency), sum(l.amount), bool_or(l.amount > 0)
      FROM (SELECT b.debit_account_id AS account_id, b.currency, b.amount FROM hl_ledger_batch b
            UNION ALL
            SELECT b.credit_account_id, b.currency, -b.amount FROM hl_ledger_batch b) l
     GROUP BY l.account_id;
    ANALYZE hl_ledger_batch_delta;

    PERFORM 1
       FROM settlement_account a
      WHERE a.id IN (SELECT d.account_id FROM hl_ledger_batch_delta d)
      ORDER BY a.id
        FOR NO KEY UPDATE;

    SELECT d.account_id AS id,
           CASE WHEN a.id IS NULL THEN 'account_not_found'
                WHEN a.currency <> d.currency OR d.mixed THEN 'currency_mismatch'
                WHEN a.is_frozen AND d.debited THEN 'account_frozen'
                ELSE 'insufficient_funds' END AS code
      INTO v_bad
      FROM hl_ledger_batch_delta d
      LEFT JOIN settlement_account a ON a.id = d.account_id
     WHERE a.id IS NULL
        OR a.currency <> d.currency
        OR d.mixed
        OR (a.is_frozen AND d.debited)
        OR a.balance + a.normal * d.amount < 0
     ORDER BY d.account_id
     LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT v_bad.code, v_bad.id, 0::bigint, v_replayed;
        RETURN;
    END IF;

    UPDATE settlement_account a
       SET balance = a.balance + a.normal * d.amount
      FROM hl_ledger_batch_delta d
     WHERE a.id = d.account_id
       AND d.amount <> 0;

    -- Public ids: 'je_' and 28 hex digits of a random UUID (106 random bits).
    WITH e AS (
        INSERT INTO settlement_journalentry
               (public_id, idempotency_key, content_hash, kind, memo, metadata, reverses_id, created_at)
        SELECT 'je_' || left(replace(gen_random_uuid()::text, '-', ''), 28),
               b.idempotency_key, b.content_hash, p_kind, p_memo, b.metadata, NULL, now()
          FROM hl_ledger_batch b
         ORDER BY b.n
        RETURNING id, idempotency_key
    )
    INSERT INTO settlement_posting (entry_id, account_id, currency, amount)
    SELECT e.id, l.account_id, b.currency, l.amount
      FROM e
      JOIN hl_ledger_batch b ON b.idempotency_key = e.idempotency_key
     CROSS JOIN LATERAL (VALUES (b.debit_account_id, b.amount), (b.credit_account_id, -b.amount)) AS l(account_id, amount);
    GET DIAGNOSTICS v_created = ROW_COUNT;

    RETURN QUERY SELECT 'created'::text, NULL::bigint, v_created / 2, v_replayed;
END $$;

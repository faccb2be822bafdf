-- Restores the first version of hl_ledger_post (0002).
CREATE OR REPLACE FUNCTION hl_ledger_post(
    p_public_id text,
    p_key text,
    p_hash text,
    p_kind text,
    p_memo text,
    p_metadata jsonb,
    p_reverses bigint,
    p_accounts bigint[],
    p_amounts bigint[],
    p_currencies text[]
) RETURNS TABLE (entry_id bigint, entry_public_id text, status text, account_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_public text;
    v_hash text;
    v_bad record;
BEGIN
    SELECT e.id, e.public_id, e.content_hash INTO v_id, v_public, v_hash
      FROM settlement_journalentry e
     WHERE e.idempotency_key = p_key;
    IF FOUND THEN
        RETURN QUERY SELECT v_id, v_public,
            CASE WHEN v_hash = p_hash THEN 'replayed' ELSE 'idempotency_conflict' END, NULL::bigint;
        RETURN;
    END IF;

    IF p_reverses IS NOT NULL AND EXISTS (
        SELECT 1 FROM settlement_journalentry e WHERE e.reverses_id = p_reverses
    ) THEN
        RETURN QUERY SELECT NULL::bigint, NULL::text, 'entry_already_reversed'::text, NULL::bigint;
        RETURN;
    END IF;

    PERFORM 1
       FROM settlement_account a
      WHERE a.id = ANY (p_accounts)
      ORDER BY a.id
        FOR NO KEY UPDATE;

    SELECT d.account_id AS id,
           CASE WHEN a.id IS NULL THEN 'account_not_found'
                WHEN a.currency <> d.currency OR d.currencies > 1 THEN 'currency_mismatch'
                WHEN a.is_frozen AND d.debited THEN 'account_frozen'
                ELSE 'insufficient_funds' END AS code
      INTO v_bad
      FROM (SELECT u.account_id,
                   min(u.currency) AS currency,
                   count(DISTINCT u.currency) AS currencies,
                   sum(u.amount) AS amount,
                   bool_or(u.amount > 0) AS debited
              FROM unnest(p_accounts, p_amounts, p_currencies) AS u(account_id, amount, currency)
             GROUP BY u.account_id) d
      LEFT JOIN settlement_account a ON a.id = d.account_id
     WHERE a.id IS NULL
        OR a.currency <> d.currency
        OR d.currencies > 1
        OR (a.is_frozen AND d.debited)
        OR a.balance + a.normal * d.amount < 0
     ORDER BY d.account_id
     LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT NULL::bigint, NULL::text, v_bad.code, v_bad.id;
        RETURN;
    END IF;

    -- A concurrent post with the same key may have committed while we waited
    -- for the locks: then it is a replay (or a conflict), and we write nothing.
    INSERT INTO settlement_journalentry
           (public_id, idempotency_key, content_hash, kind, memo, metadata, reverses_id, created_at)
    VALUES (p_public_id, p_key, p_hash, p_kind, p_memo, p_metadata, p_reverses, now())
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT e.id, e.public_id, e.content_hash INTO v_id, v_public, v_hash
          FROM settlement_journalentry e
         WHERE e.idempotency_key = p_key;
        RETURN QUERY SELECT v_id, v_public,
            CASE WHEN v_hash = p_hash THEN 'replayed' ELSE 'idempotency_conflict' END, NULL::bigint;
        RETURN;
    END IF;

    UPDATE settlement_account a
       SET balance = a.balance + a.normal * d.amount
      FROM (SELECT u.account_id, sum(u.amount) AS amount
              FROM unnest(p_accounts, p_amounts) AS u(account_id, amount)
             GROUP BY u.account_id) d
     WHERE a.id = d.account_id
       AND d.amount <> 0;

    INSERT INTO settlement_posting (entry_id, account_id, currency, amount)
    SELECT v_id, u.account_id, u.currency, u.amount
      FROM unnest(p_accounts, p_amounts, p_currencies) WITH ORDINALITY AS u(account_id, amount, currency, n)
     ORDER BY u.n;

    RETURN QUERY SELECT v_id, p_public_id, 'created'::text, NULL::bigint;
END $$;

-- hl_ledger_post, second version: the same contract, less work inside the locks.
--
-- * The legs are aggregated per account once, in one statement, into arrays
--   sorted by account id; the locking loop then checks each locked row
--   against them in PL/pgSQL (no second query over the accounts).
-- * Balances are updated row by row by primary key, in the same order.
-- * A refusal found after waiting for the locks looks again for the key and
--   for the reversal: a concurrent post of the same key (or reversal of the
--   same entry) that committed meanwhile is the true answer, not the refusal
--   it caused. The happy path pays nothing for this.
-- * The entry INSERT takes ON CONFLICT DO NOTHING on every unique constraint,
--   so two reversals of one entry racing to the INSERT answer
--   entry_already_reversed instead of aborting the caller's transaction.
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
    v_ids bigint[];
    v_sums bigint[];
    v_debited boolean[];
    v_currencies text[];
    v_mixed boolean;
    v_acc record;
    v_i int := 0;
    v_refusal text;
    v_refused bigint;
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

    SELECT array_agg(d.account_id ORDER BY d.account_id),
           array_agg(d.amount ORDER BY d.account_id),
           array_agg(d.debited ORDER BY d.account_id),
           array_agg(d.currency ORDER BY d.account_id),
           bool_or(d.currencies > 1)
      INTO v_ids, v_sums, v_debited, v_currencies, v_mixed
      FROM (SELECT u.account_id,
                   sum(u.amount) AS amount,
                   bool_or(u.amount > 0) AS debited,
                   min(u.currency) AS currency,
                   count(DISTINCT u.currency) AS currencies
              FROM unnest(p_accounts, p_amounts, p_currencies) AS u(account_id, amount, currency)
             GROUP BY u.account_id) d;

    -- Lock in primary-key order, FOR NO KEY UPDATE (see 0002), and check.
    FOR v_acc IN
        SELECT a.id, a.currency, a.normal, a.balance, a.is_frozen
          FROM settlement_account a
         WHERE a.id = ANY (v_ids)
         ORDER BY a.id
           FOR NO KEY UPDATE
    LOOP
        v_i := v_i + 1;
        IF v_acc.id <> v_ids[v_i] THEN
            v_refusal := 'account_not_found'; v_refused := v_ids[v_i];
        ELSIF v_mixed OR v_acc.currency <> v_currencies[v_i] THEN
            v_refusal := 'currency_mismatch'; v_refused := v_acc.id;
        ELSIF v_acc.is_frozen AND v_debited[v_i] THEN
            v_refusal := 'account_frozen'; v_refused := v_acc.id;
        ELSIF v_acc.balance + v_acc.normal * v_sums[v_i] < 0 THEN
            v_refusal := 'insufficient_funds'; v_refused := v_acc.id;
        ELSE
            v_sums[v_i] := v_acc.normal * v_sums[v_i];  -- now the change of the stored balance
        END IF;
        EXIT WHEN v_refusal IS NOT NULL;  -- nothing written; the locks taken go with the transaction
    END LOOP;
    IF v_refusal IS NULL AND v_i < array_length(v_ids, 1) THEN
        v_refusal := 'account_not_found'; v_refused := v_ids[v_i + 1];
    END IF;

    IF v_refusal IS NOT NULL THEN
        SELECT e.id, e.public_id, e.content_hash INTO v_id, v_public, v_hash
          FROM settlement_journalentry e
         WHERE e.idempotency_key = p_key;
        IF FOUND THEN
            RETURN QUERY SELECT v_id, v_public,
                CASE WHEN v_hash = p_hash THEN 'replayed' ELSE 'idempotency_conflict' END, NULL::bigint;
        ELSIF p_reverses IS NOT NULL AND EXISTS (
            SELECT 1 FROM settlement_journalentry e WHERE e.reverses_id = p_reverses
        ) THEN
            RETURN QUERY SELECT NULL::bigint, NULL::text, 'entry_already_reversed'::text, NULL::bigint;
        ELSE
            RETURN QUERY SELECT NULL::bigint, NULL::text, v_refusal, v_refused;
        END IF;
        RETURN;
    END IF;

    -- A concurrent post with the same key, or a reversal of the same entry,
    -- may have committed while we waited for the locks: then that is the
    -- answer, and we write nothing. (No conflict target: every unique
    -- constraint of the entry counts, so the caller's transaction never aborts.)
    INSERT INTO settlement_journalentry
           (public_id, idempotency_key, content_hash, kind, memo, metadata, reverses_id, created_at)
    VALUES (p_public_id, p_key, p_hash, p_kind, p_memo, p_metadata, p_reverses, now())
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT e.id, e.public_id, e.content_hash INTO v_id, v_public, v_hash
          FROM settlement_journalentry e
         WHERE e.idempotency_key = p_key;
        IF FOUND THEN
            RETURN QUERY SELECT v_id, v_public,
                CASE WHEN v_hash = p_hash THEN 'replayed' ELSE 'idempotency_conflict' END, NULL::bigint;
        ELSIF p_reverses IS NOT NULL THEN
            RETURN QUERY SELECT NULL::bigint, NULL::text, 'entry_already_reversed'::text, NULL::bigint;
        ELSE
            RAISE EXCEPTION 'hl_ledger:public_id_collision:0';  -- 119 random bits met: post again
        END IF;
        RETURN;
    END IF;

    FOR v_i IN 1 .. array_length(v_ids, 1) LOOP
        IF v_sums[v_i] <> 0 THEN
            UPDATE settlement_account SET balance = balance + v_sums[v_i] WHERE id = v_ids[v_i];
        END IF;
    END LOOP;

    INSERT INTO settlement_posting (entry_id, account_id, currency, amount)
    SELECT v_id, u.account_id, u.currency, u.amount
      FROM unnest(p_accounts, p_amounts, p_currencies) WITH ORDINALITY AS u(account_id, amount, currency, n)
     ORDER BY u.n;

    RETURN QUERY SELECT v_id, p_public_id, 'created'::text, NULL::bigint;
END $$;

-- The obligation's references (payer, payee, maker, checker) proven once per
-- statement instead of by four per-row foreign keys (migration 0016).
--
-- A bulk request COPYs up to 10,000 obligations; PostgreSQL checked each row's
-- four deferred foreign keys at commit, one query per key per row (about a
-- third of the request's database time, measured by backend CPU). The same
-- guarantees, set-based:
--
-- * after each INSERT statement, every payer and payee names an enterprise
--   and every maker (created_by) and checker (approved_by) a user; those rows
--   are locked FOR KEY SHARE until commit, as a foreign key's check locks them;
-- * an UPDATE that changes one of those columns is checked the same way, row
--   by row (only such rows: a batch's status rewrites skip the trigger);
-- * an enterprise or user that an obligation names cannot be deleted nor
--   change its id (obligation_referenced_guard).
-- Violations raise SQLSTATE 23503 (foreign_key_violation), as a foreign key would.

CREATE OR REPLACE FUNCTION hl_obligations_references() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_missing bigint;
BEGIN
    SELECT p.id INTO v_missing
      FROM (SELECT n.payer_id AS id FROM new_obligations n
            UNION SELECT n.payee_id FROM new_obligations n) p
     WHERE NOT EXISTS (SELECT 1 FROM corporates_enterprise e WHERE e.id = p.id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'hl_obligation:enterprise_not_found:%', v_missing USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT u.id INTO v_missing
      FROM (SELECT n.created_by_id AS id FROM new_obligations n WHERE n.created_by_id IS NOT NULL
            UNION SELECT n.approved_by_id FROM new_obligations n WHERE n.approved_by_id IS NOT NULL) u
     WHERE NOT EXISTS (SELECT 1 FROM auth_user a WHERE a.id = u.id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'hl_obligation:user_not_found:%', v_missing USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM 1 FROM corporates_enterprise e
      WHERE e.id IN (SELECT n.payer_id FROM new_obligations n UNION SELECT n.payee_id FROM new_obligations n)
      ORDER BY e.id FOR KEY SHARE;
    PERFORM 1 FROM auth_user a
      WHERE a.id IN (SELECT n.created_by_id FROM new_obligations n UNION SELECT n.approved_by_id FROM new_obligations n)
      ORDER BY a.id FOR KEY SHARE;
    RETURN NULL;
END $$;

CREATE TRIGGER obligation_references AFTER INSERT ON settlement_obligation
    REFERENCING NEW TABLE AS new_obligations
    FOR EACH STATEMENT EXECUTE FUNCTION hl_obligations_references();

CREATE OR REPLACE FUNCTION hl_obligation_references_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM corporates_enterprise e WHERE e.id IN (NEW.payer_id, NEW.payee_id) ORDER BY e.id FOR KEY SHARE;
    IF EXISTS (SELECT 1 FROM (VALUES (NEW.payer_id), (NEW.payee_id)) AS v(id)
                WHERE NOT EXISTS (SELECT 1 FROM corporates_enterprise e WHERE e.id = v.id)) THEN
        RAISE EXCEPTION 'hl_obligation:enterprise_not_found:%', NEW.id USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM 1 FROM auth_user a WHERE a.id IN (NEW.created_by_id, NEW.approved_by_id) ORDER BY a.id FOR KEY SHARE;
    IF (NEW.created_by_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM auth_user a WHERE a.id = NEW.created_by_id))
       OR (NEW.approved_by_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM auth_user a WHERE a.id = NEW.approved_by_id)) THEN
        RAISE EXCEPTION 'hl_obligation:user_not_found:%', NEW.id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER obligation_references_changed BEFORE UPDATE ON settlement_obligation
    FOR EACH ROW WHEN (NEW.payer_id IS DISTINCT FROM OLD.payer_id OR NEW.payee_id IS DISTINCT FROM OLD.payee_id
                       OR NEW.created_by_id IS DISTINCT FROM OLD.created_by_id
                       OR NEW.approved_by_id IS DISTINCT FROM OLD.approved_by_id)
    EXECUTE FUNCTION hl_obligation_references_changed();

-- The referenced side: an enterprise or user an obligation names stays.
CREATE OR REPLACE FUNCTION hl_obligation_referenced_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'corporates_enterprise' THEN
        IF EXISTS (SELECT 1 FROM settlement_obligation o WHERE o.payee_id = OLD.id)
           OR EXISTS (SELECT 1 FROM settlement_obligation o WHERE o.payer_id = OLD.id) THEN
            RAISE EXCEPTION 'hl_obligation:enterprise_referenced:%', OLD.id USING ERRCODE = 'foreign_key_violation';
        END IF;
    ELSIF EXISTS (SELECT 1 FROM settlement_obligation o WHERE o.created_by_id = OLD.id OR o.approved_by_id = OLD.id) THEN
        RAISE EXCEPTION 'hl_obligation:user_referenced:%', OLD.id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER obligation_referenced_guard BEFORE DELETE OR UPDATE OF id ON corporates_enterprise
    FOR EACH ROW EXECUTE FUNCTION hl_obligation_referenced_guard();
CREATE TRIGGER obligation_referenced_guard BEFORE DELETE OR UPDATE OF id ON auth_user
    FOR EACH ROW EXECUTE FUNCTION hl_obligation_referenced_guard();

"""The KYB audit trail is append-only in PostgreSQL too.

A status change, once recorded, cannot be updated or deleted, whoever holds a
database connection. One update is allowed: Django setting ``actor`` to NULL
when that user is deleted (``actor_label`` still names them). SQLite (the
embedded default) relies on the services and the read-only admin.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION hl_kyb_status_change_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.actor_id IS NULL
       AND (NEW.id, NEW.enterprise_id, NEW.from_status, NEW.to_status, NEW.reason, NEW.actor_label, NEW.created_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.enterprise_id, OLD.from_status, OLD.to_status, OLD.reason, OLD.actor_label, OLD.created_at)
    THEN
        RETURN NEW;  -- the actor's user was deleted; the label keeps the name
    END IF;
    RAISE EXCEPTION 'the KYB audit trail is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER kyb_status_change_append_only
    BEFORE UPDATE OR DELETE ON corporates_enterprisestatuschange
    FOR EACH ROW EXECUTE FUNCTION hl_kyb_status_change_append_only();
"""

REVERSE = """
DROP TRIGGER IF EXISTS kyb_status_change_append_only ON corporates_enterprisestatuschange;
DROP FUNCTION IF EXISTS hl_kyb_status_change_append_only();
"""


def _run(sql):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("corporates", "0005_webhook_retry_schedule")]

    operations = [migrations.RunPython(_run(FORWARD), _run(REVERSE))]

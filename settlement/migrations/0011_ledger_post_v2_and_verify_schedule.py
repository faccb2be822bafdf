"""hl_ledger_post v2 (less work inside the account locks), and beat's ledger check.

The function keeps its contract (settlement.ledger.services relies on it);
see the comment at the top of sql/0011_ledger_post_v2.pg.sql. The schedule
runs `settlement.ledger_verify` every ten minutes; the back office sees and
edits it in admin (Periodic tasks).
"""

from pathlib import Path

from django.db import migrations

from config.migration_ops import interval_tasks, postgresql_sql_file

SQL_DIR = Path(__file__).resolve().parent / "sql"
SCHEDULE = ("settlement: verify the ledger's invariants", "settlement.ledger_verify", 600, "seconds")


def _run(filename):
    return postgresql_sql_file(SQL_DIR / filename)


def _restore_v1(apps, schema_editor):
    """Reverse: the first hl_ledger_post, as 0002 created it (the rest of 0002 stays in place)."""
    if schema_editor.connection.vendor == "postgresql":
        sql = (SQL_DIR / "0002_ledger.pg.sql").read_text()
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(sql[sql.index("CREATE OR REPLACE FUNCTION hl_ledger_post(") :])


schedule_add, schedule_remove = interval_tasks([SCHEDULE])


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0010_netting_cutoff_schedules"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(_run("0011_ledger_post_v2.pg.sql"), _restore_v1),
        migrations.RunPython(schedule_add, schedule_remove),
    ]

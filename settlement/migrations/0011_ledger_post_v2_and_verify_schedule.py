"""hl_ledger_post v2 (less work inside the account locks), and beat's ledger check.

The function keeps its contract (settlement.ledger.services relies on it);
see the comment at the top of sql/0011_ledger_post_v2.pg.sql. The schedule
runs `settlement.ledger_verify` every ten minutes; the back office sees and
edits it in admin (Periodic tasks).
"""

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent / "sql"
SCHEDULE = ("settlement: verify the ledger's invariants", "settlement.ledger_verify", 600)


def _run(filename):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute((SQL_DIR / filename).read_text())

    return apply


def schedule_add(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    name, task, every = SCHEDULE
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=name, defaults={"task": task, "interval": interval, "enabled": True, "queue": "default"}
    )


def schedule_remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SCHEDULE[0]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0010_netting_cutoff_schedules"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(_run("0011_ledger_post_v2.pg.sql"), _run("0011_ledger_post_v2_reverse.pg.sql")),
        migrations.RunPython(schedule_add, schedule_remove),
    ]

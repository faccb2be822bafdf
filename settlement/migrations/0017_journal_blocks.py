"""Hash-chained journal blocks (DESIGN.md invariant 4), immutable like the entries they seal.

Beat runs `settlement.journal_seal` every minute; the back office sees and
edits the schedule in admin (Periodic tasks).
"""

from django.db import migrations, models

from config.migration_ops import interval_tasks

SCHEDULE = ("settlement: seal the journal into hash-chained blocks", "settlement.journal_seal", 60, "seconds")
schedule_add, schedule_remove = interval_tasks([SCHEDULE])

# hl_ledger_immutable() comes from 0002: the same refusal as for entries and postings.
IMMUTABLE = """
CREATE TRIGGER journalblock_immutable BEFORE UPDATE OR DELETE ON settlement_journalblock
    FOR EACH ROW EXECUTE FUNCTION hl_ledger_immutable();
"""
IMMUTABLE_REVERSE = "DROP TRIGGER IF EXISTS journalblock_immutable ON settlement_journalblock;"


def _immutable(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(IMMUTABLE)


def _immutable_reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(IMMUTABLE_REVERSE)


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0016_obligation_set_based_references"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="JournalBlock",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveBigIntegerField(unique=True)),
                ("first_entry_id", models.BigIntegerField(unique=True)),
                ("last_entry_id", models.BigIntegerField()),
                ("entry_count", models.PositiveIntegerField()),
                ("previous_hash", models.CharField(max_length=64, unique=True)),
                ("hash", models.CharField(max_length=64)),
                ("sealed_at", models.DateTimeField()),
            ],
            options={
                "ordering": ["number"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("last_entry_id__gte", models.F("first_entry_id"))),
                        name="block_range_valid",
                    )
                ],
            },
        ),
        migrations.RunPython(_immutable, _immutable_reverse),
        migrations.RunPython(schedule_add, schedule_remove),
    ]

"""PostgreSQL's share of the ledger's batch-posting path (settlement.ledger.batch).

SQLite has none of this; the portable path of settlement.ledger.batch checks
the same rules through the ORM.
"""

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent / "sql"


def _run(filename):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute((SQL_DIR / filename).read_text())

    return apply


class Migration(migrations.Migration):
    dependencies = [("settlement", "0003_obligations_and_netting")]

    operations = [
        migrations.RunPython(_run("0004_ledger_batch.pg.sql"), _run("0004_ledger_batch_reverse.pg.sql")),
    ]

"""PostgreSQL's share of the ledger's batch-posting path (settlement.ledger.batch).

SQLite has none of this; the portable path of settlement.ledger.batch checks
the same rules through the ORM.
"""

from pathlib import Path

from django.db import migrations

from config.migration_ops import postgresql_sql_file

SQL_DIR = Path(__file__).resolve().parent / "sql"


def _run(filename):
    return postgresql_sql_file(SQL_DIR / filename)


class Migration(migrations.Migration):
    dependencies = [("settlement", "0003_obligations_and_netting")]

    operations = [
        migrations.RunPython(_run("0004_ledger_batch.pg.sql"), _run("0004_ledger_batch_reverse.pg.sql")),
    ]

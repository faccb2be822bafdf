"""PostgreSQL's share of the ledger rules: immutability and balance triggers, the post function.

SQLite (the embedded default) has none of this; the ORM path of
settlement.ledger.services checks the same rules in Python.
"""

from pathlib import Path

from django.db import migrations

from config.migration_ops import postgresql_sql_file

SQL_DIR = Path(__file__).resolve().parent / "sql"


def _run(filename):
    return postgresql_sql_file(SQL_DIR / filename)


class Migration(migrations.Migration):
    dependencies = [("settlement", "0001_initial")]

    operations = [
        migrations.RunPython(_run("0002_ledger.pg.sql"), _run("0002_ledger_reverse.pg.sql")),
    ]

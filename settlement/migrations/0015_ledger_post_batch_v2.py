"""hl_ledger_post_batch v2: one pass for idempotency, time-ordered public ids (issue 6).

The function keeps its contract (settlement.ledger.batch relies on it); see
the header of sql/0015_ledger_post_batch_v2.pg.sql. Reversed, 0004's version
comes back.
"""

from pathlib import Path

from django.db import migrations

from config.migration_ops import postgresql_sql_file

SQL_DIR = Path(__file__).resolve().parent / "sql"


class Migration(migrations.Migration):
    dependencies = [("settlement", "0014_ledger_set_based_integrity")]

    operations = [
        migrations.RunPython(
            postgresql_sql_file(SQL_DIR / "0015_ledger_post_batch_v2.pg.sql"),
            postgresql_sql_file(SQL_DIR / "0004_ledger_batch.pg.sql"),
        ),
    ]

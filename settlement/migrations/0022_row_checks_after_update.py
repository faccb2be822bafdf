"""The obligation-references and account guards become AFTER row triggers: no row lock per updated row.

See the SQL file's header. PostgreSQL only; reversed, they fire BEFORE again.
"""

from pathlib import Path

from django.db import migrations

from config.migration_ops import postgresql_sql_file

SQL_DIR = Path(__file__).resolve().parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0021_netting_batch_cut"),
    ]

    operations = [
        migrations.RunPython(
            postgresql_sql_file(SQL_DIR / "0022_row_checks_after_update.pg.sql"),
            postgresql_sql_file(SQL_DIR / "0022_row_checks_after_update_reverse.pg.sql"),
        ),
    ]

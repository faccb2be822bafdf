"""An obligation's references proven once per statement, not by four per-row foreign keys (issue 6: ingest).

The AlterFields drop the database foreign keys of payer, payee, created_by
and approved_by; the SQL file puts the same guarantees into triggers (see its
header). Reversed, the foreign keys come back and the triggers go.
"""

from pathlib import Path

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from config.migration_ops import postgresql_sql_file

SQL_DIR = Path(__file__).resolve().parent / "sql"


class Migration(migrations.Migration):

    dependencies = [
        ('corporates', '0008_api_key_scope_webhooks'),
        ('settlement', '0015_ledger_post_batch_v2'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='obligation',
            name='approved_by',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='obligation',
            name='created_by',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='obligation',
            name='payee',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='obligations_in', to='corporates.enterprise'),
        ),
        migrations.AlterField(
            model_name='obligation',
            name='payer',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='obligations_out', to='corporates.enterprise'),
        ),
        migrations.RunPython(
            postgresql_sql_file(SQL_DIR / "0016_obligation_set_based_references.pg.sql"),
            postgresql_sql_file(SQL_DIR / "0016_obligation_set_based_references_reverse.pg.sql"),
        ),
    ]

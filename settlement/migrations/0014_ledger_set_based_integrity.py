"""The journal's foreign keys proven once per statement, not once per row (issue 6: netting at scale).

The AlterFields drop the database foreign keys of postings (entry, account),
of an entry's reversal and of a netting pair's batch; the SQL file puts the
same guarantees into set-based triggers (see its header for what each one
proves and what was measured). Reversed, the foreign keys come back and the
triggers go.
"""

from pathlib import Path

import django.db.models.deletion
from django.db import migrations, models

from config.migration_ops import postgresql_sql_file

SQL_DIR = Path(__file__).resolve().parent / "sql"


class Migration(migrations.Migration):

    dependencies = [
        ('settlement', '0013_netting_multilateral'),
    ]

    operations = [
        migrations.AlterField(
            model_name='journalentry',
            name='reverses',
            field=models.OneToOneField(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='reversed_by', to='settlement.journalentry'),
        ),
        migrations.AlterField(
            model_name='nettingpair',
            name='batch',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='pairs', to='settlement.nettingbatch'),
        ),
        migrations.AlterField(
            model_name='posting',
            name='account',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='postings', to='settlement.account'),
        ),
        migrations.AlterField(
            model_name='posting',
            name='entry',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='postings', to='settlement.journalentry'),
        ),
        migrations.RunPython(
            postgresql_sql_file(SQL_DIR / "0014_ledger_set_based_integrity.pg.sql"),
            postgresql_sql_file(SQL_DIR / "0014_ledger_set_based_integrity_reverse.pg.sql"),
        ),
    ]

"""Data: the django-celery-beat schedules of mint and redeem.

The back office sees and edits them in admin (Periodic tasks): the payout
sweep re-queues approved redemptions with no payout recorded (a lost task or a
dead worker; the bank still pays once), and reconciliation compares the
custodian with the ledger every few minutes.
"""

from django.db import migrations

from config.migration_ops import interval_tasks

TASKS = [
    ("settlement: redemption payout sweep", "settlement.redemption_payout_sweep", 60, "seconds"),
    ("settlement: reconcile reserves with the custodian", "settlement.reserves_reconcile", 300, "seconds"),
]


forwards, backwards = interval_tasks(TASKS)


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0005_deposits_redemptions_reserves"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]

"""Data: the django-celery-beat schedules of mint and redeem.

The back office sees and edits them in admin (Periodic tasks): the payout
sweep re-queues approved redemptions with no payout recorded (a lost task or a
dead worker; the bank still pays once), and reconciliation compares the
custodian with the ledger every few minutes.
"""

from django.db import migrations

TASKS = [
    # name, task, every (seconds)
    ("settlement: redemption payout sweep", "settlement.redemption_payout_sweep", 60),
    ("settlement: reconcile reserves with the custodian", "settlement.reserves_reconcile", 300),
]


def forwards(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, every in TASKS:
        schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period="seconds")
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": schedule, "enabled": True, "queue": "default"}
        )


def backwards(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0005_deposits_redemptions_reserves"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]

"""Data: the django-celery-beat schedules of the netting cut-offs.

Every 15 minutes, and a daily 16:00 Hong Kong cut-off. The back office sees
and edits them in admin (Periodic tasks). Each runs ``netting.cutoff``, which
first finishes any batch a dead worker left unfinished, then opens and runs a
new one; two cut-offs firing together never take the same obligation.
"""

import json

from django.db import migrations

EVERY_15_MINUTES = "netting: cut-off every 15 minutes"
DAILY_1600_HKT = "netting: daily 16:00 Hong Kong cut-off"


def forwards(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=EVERY_15_MINUTES,
        defaults={
            "task": "netting.cutoff",
            "interval": every,
            "kwargs": json.dumps({"trigger": EVERY_15_MINUTES}),
            "enabled": True,
            "queue": "default",
        },
    )
    daily, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="16", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Asia/Hong_Kong"
    )
    PeriodicTask.objects.get_or_create(
        name=DAILY_1600_HKT,
        defaults={
            "task": "netting.cutoff",
            "crontab": daily,
            "kwargs": json.dumps({"trigger": DAILY_1600_HKT}),
            "enabled": True,
            "queue": "default",
        },
    )


def backwards(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[EVERY_15_MINUTES, DAILY_1600_HKT]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0009_netting_batch_events"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]

"""Data: the two rate sources, and the django-celery-beat schedules of fx.

The back office sees and edits the schedules in admin (Periodic tasks). The
manual source outranks the simulated feed, so an active manual rate
overrides it.
"""

from django.db import migrations

SOURCES = [
    ("simulated", "Simulated market feed", 10),
    ("manual", "Manual rates (back office)", 100),
]
TASKS = [
    # name, task, every (seconds)
    ("fx: publish rates", "fx.rates_publish", 5),
    ("fx: check inventory floors", "fx.inventory_floors_check", 300),
]


def forwards(apps, schema_editor):
    RateSource = apps.get_model("fx", "RateSource")
    for key, name, priority in SOURCES:
        RateSource.objects.get_or_create(key=key, defaults={"name": name, "priority": priority, "is_active": True})
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
        ("fx", "0001_fx_models"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]

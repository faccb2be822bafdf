"""Data: the two rate sources, and the django-celery-beat schedules of fx.

The back office sees and edits the schedules in admin (Periodic tasks). The
manual source outranks the simulated feed, so an active manual rate
overrides it.
"""

from django.db import migrations

from config.migration_ops import interval_tasks

SOURCES = [
    ("simulated", "Simulated market feed", 10),
    ("manual", "Manual rates (back office)", 100),
]
TASKS = [
    ("fx: publish rates", "fx.rates_publish", 5, "seconds"),
    ("fx: check inventory floors", "fx.inventory_floors_check", 300, "seconds"),
]


schedules_add, schedules_remove = interval_tasks(TASKS)


def forwards(apps, schema_editor):
    RateSource = apps.get_model("fx", "RateSource")
    for key, name, priority in SOURCES:
        RateSource.objects.get_or_create(key=key, defaults={"name": name, "priority": priority, "is_active": True})
    schedules_add(apps, schema_editor)


def backwards(apps, schema_editor):
    schedules_remove(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("fx", "0001_fx_models"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]

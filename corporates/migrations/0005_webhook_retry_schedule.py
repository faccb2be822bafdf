"""Data: the django-celery-beat schedule of the webhook retry sweep (visible and editable in admin)."""

from django.db import migrations

NAME = "corporates: retry due webhook deliveries"


def forwards(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = IntervalSchedule.objects.get_or_create(every=30, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={"task": "corporates.webhooks_retry_due", "interval": schedule, "enabled": True, "queue": "default"},
    )


def backwards(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("corporates", "0004_api_keys_idempotency_webhooks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]

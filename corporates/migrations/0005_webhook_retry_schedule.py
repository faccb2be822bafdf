"""Data: the django-celery-beat schedule of the webhook retry sweep (visible and editable in admin)."""

from django.db import migrations

from config.migration_ops import interval_tasks

NAME = "corporates: retry due webhook deliveries"


forwards, backwards = interval_tasks([(NAME, "corporates.webhooks_retry_due", 30, "seconds")])


class Migration(migrations.Migration):
    dependencies = [
        ("corporates", "0004_api_keys_idempotency_webhooks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]

"""Data: the django-celery-beat schedule that forgets old Idempotency-Keys (hourly, editable in admin)."""

from django.db import migrations

from config.migration_ops import interval_tasks

NAME = "corporates: purge expired idempotency keys"


forwards, backwards = interval_tasks([(NAME, "corporates.idempotency_records_purge", 1, "hours")])


class Migration(migrations.Migration):
    dependencies = [
        ("corporates", "0006_kyb_audit_trail_append_only"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]

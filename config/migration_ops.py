"""Small building blocks for data migrations, shared so that each migration stays a few lines.

Migrations import these by name, so their behaviour must never change: add a
new function rather than alter one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

# name, dotted task name, every, period ("seconds", "minutes", "hours", "days")
IntervalTask = tuple[str, str, int, str]


def postgresql_sql_file(path: Path) -> Callable:
    """A RunPython function that executes an SQL file on PostgreSQL and does nothing elsewhere."""

    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            # Straight to the cursor with no parameters: the SQL holds literal '%'.
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(path.read_text())

    return apply


def interval_tasks(tasks: Iterable[IntervalTask]) -> tuple[Callable, Callable]:
    """RunPython (forwards, backwards) creating django-celery-beat interval schedules.

    Existing rows are left as they are: the back office may have edited them.
    """
    tasks = list(tasks)

    def forwards(apps, schema_editor) -> None:
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        for name, task, every, period in tasks:
            schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
            PeriodicTask.objects.get_or_create(
                name=name, defaults={"task": task, "interval": schedule, "enabled": True, "queue": "default"}
            )

    def backwards(apps, schema_editor) -> None:
        apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
            name__in=[name for name, *_ in tasks]
        ).delete()

    return forwards, backwards

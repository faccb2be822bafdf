"""Celery tasks of fx: thin wrappers over services, scheduled by django-celery-beat.

The PeriodicTask rows ("fx: publish rates", "fx: check inventory floors") are
created by the data migration fx/migrations/0002_rate_sources_and_schedule.py,
so the back office sees and edits them in admin.
"""

from __future__ import annotations

from celery import shared_task

from fx import services


@shared_task(name="fx.rates_publish", ignore_result=True, time_limit=30, soft_time_limit=20)
def rates_publish_task() -> int:
    return len(services.rates_publish())


@shared_task(name="fx.inventory_floors_check", ignore_result=True, time_limit=60, soft_time_limit=50)
def inventory_floors_check_task() -> int:
    return len(services.inventory_floors_check())

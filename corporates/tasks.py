"""Celery tasks of corporates: thin wrappers over services (ids in, one service call)."""

from __future__ import annotations

from celery import shared_task

from corporates.api.idempotency import idempotency_records_purge
from corporates.webhooks import webhook_deliveries_retry_due, webhook_delivery_attempt


@shared_task(name="corporates.webhook_deliver", acks_late=True)
def webhook_deliver(*, delivery_id: int) -> None:
    """First attempt of a delivery, queued on commit of the event."""
    webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="corporates.webhooks_retry_due", acks_late=True)
def webhooks_retry_due() -> int:
    """The retry sweep, run by beat every ``WEBHOOK_SWEEP_SECONDS``."""
    return webhook_deliveries_retry_due()


@shared_task(name="corporates.idempotency_records_purge", acks_late=True)
def idempotency_records_purge_task() -> int:
    """Forget Idempotency-Keys older than ``IDEMPOTENCY_KEY_TTL`` (beat, hourly)."""
    return idempotency_records_purge()

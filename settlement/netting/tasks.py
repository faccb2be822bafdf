"""Celery tasks of netting: thin wrappers over settlement.netting.services.

Both are safe to run twice, concurrently or after a worker died mid-way: the
services check the batch's state under a row lock at every step, and the
ledger skips an entry whose idempotency key was already posted. The broker
settings (acks late, reject on worker lost) redeliver a task whose worker died.
"""

from __future__ import annotations

from celery import shared_task

from settlement.netting.services import batch_cutoff, batch_events_emit, batch_run


@shared_task(name="netting.batch_run", acks_late=True, time_limit=1800, soft_time_limit=1700)
def netting_batch_run_task(*, batch_id: int) -> dict:
    """Run or resume one batch (back office "run now", or a retry)."""
    batch = batch_run(batch_id=batch_id)
    return {"batch": batch.public_id, "status": batch.status, "phase_seconds": batch.phase_seconds}


@shared_task(name="netting.cutoff", acks_late=True, time_limit=1800, soft_time_limit=1700)
def netting_cutoff_task(*, trigger: str = "schedule") -> dict:
    """A cut-off (django-celery-beat schedule): finish unfinished batches, then run a new one."""
    batch = batch_cutoff(trigger=trigger)
    return {"batch": batch.public_id, "status": batch.status, "phase_seconds": batch.phase_seconds}


@shared_task(name="netting.batch_events", acks_late=True, time_limit=1800, soft_time_limit=1700)
def netting_batch_events_task(*, batch_id: int) -> int:
    """Emit a completed batch's events (queued on the batch's commit); emits nothing if they went out already."""
    return batch_events_emit(batch_id=batch_id)

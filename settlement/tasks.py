"""Celery tasks of settlement: thin wrappers over services (STYLE.md, "Celery")."""

from __future__ import annotations

import logging

from celery import shared_task

from settlement.ledger.sealing import journal_seal
from settlement.ledger.selectors import ledger_verify

logger = logging.getLogger(__name__)


@shared_task(name="settlement.ledger_verify", queue="default", time_limit=300, soft_time_limit=280)
def ledger_verify_task() -> dict:
    """Check the ledger's invariants (scheduled by beat); log every breach loudly.

    Returns the per-currency summary so that a caller with a result backend
    (the integration tests, an operator's shell) can read it.
    """
    report = ledger_verify()
    for breach in report.breaches:
        logger.error("ledger invariant breached: %s", breach)
    return {
        "ok": report.ok,
        "breaches": report.breaches,
        "currencies": {
            code: {"supply": s.supply, "reserve": s.reserve, "clearing": s.clearing}
            for code, s in report.currencies.items()
        },
    }


@shared_task(name="settlement.journal_seal", queue="default", time_limit=600, soft_time_limit=580)
def journal_seal_task() -> dict:
    """Seal committed entries into hash-chained blocks (scheduled by beat every minute)."""
    result = journal_seal()
    if result.skipped:
        logger.info("journal sealing: %s", result.skipped)
    return {"blocks": result.blocks, "entries": result.entries, "skipped": result.skipped}


# --- mint and redeem (issue 4) ---------------------------------------------------------


@shared_task(
    name="settlement.redemption_payout",
    bind=True,
    queue="default",
    acks_late=True,
    max_retries=12,
    time_limit=120,
    soft_time_limit=100,
)
def redemption_payout_task(self, *, redemption_id: int) -> None:
    """Create the redemption's payout at the bank; retried with backoff while the bank is unreachable.

    The service sends one Idempotency-Key per redemption, so a retry, a
    duplicate message or a run after a crash never pays twice.
    """
    from settlement.rails import RailsError
    from settlement.redemptions.services import redemption_payout_create

    try:
        redemption_payout_create(redemption_id=redemption_id)
    except RailsError as exc:
        if not exc.retryable:
            raise
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from exc


@shared_task(
    name="settlement.redemption_payouts_dispatch", queue="default", acks_late=True, time_limit=600, soft_time_limit=580
)
def redemption_payouts_dispatch_task(*, linger_s: float | None = None, concurrency: int | None = None) -> int:
    """Create the payouts of every approved redemption that has none (queued by approvals, coalesced)."""
    from settlement.redemptions.services import payouts_dispatch

    return payouts_dispatch(linger_s=linger_s, concurrency=concurrency)


@shared_task(name="settlement.redemption_payout_sweep", queue="default", time_limit=120, soft_time_limit=100)
def redemption_payout_sweep_task() -> int:
    """Queue again the payouts of approved redemptions that have none recorded (lost task, dead worker)."""
    from datetime import timedelta

    from django.conf import settings

    from settlement.redemptions.services import payout_enqueue, redemptions_awaiting_payout

    ids = redemptions_awaiting_payout(older_than=timedelta(seconds=settings.REDEMPTION_PAYOUT_SWEEP_AFTER_S))
    for redemption_id in ids:
        payout_enqueue(redemption_id=redemption_id)
    return len(ids)


@shared_task(name="settlement.reserves_reconcile", queue="default", time_limit=120, soft_time_limit=100)
def reserves_reconcile_task() -> dict:
    """Compare the custodian's balances with the ledger (scheduled by beat); alert on a difference."""
    from settlement.reserves import reserves_reconcile

    result = reserves_reconcile()
    return {
        "clean": result.clean,
        "custodian_error": result.snapshot.custodian_error,
        "alerts": [alert.pk for alert in result.alerts],
    }

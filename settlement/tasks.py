"""Celery tasks of settlement: thin wrappers over services (STYLE.md, "Celery")."""

from __future__ import annotations

import logging

from celery import shared_task

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

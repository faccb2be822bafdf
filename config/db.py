"""Transactions: the outermost service opens one and retries what PostgreSQL may abort.

Deadlocks and serialization failures are not errors a caller can act on: the
whole transaction is safe to run again, so the outermost service does, a few
times with jittered backoff, and only then lets the failure surface.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import OperationalError, connection, transaction

T = TypeVar("T")

# SQLSTATEs that mean "try the whole transaction again".
RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}


def is_retryable(exc: BaseException) -> bool:
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(getattr(cause, "diag", None), "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    # SQLite: another writer holds the database lock past the busy timeout.
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


def run_in_transaction(fn: Callable[[], T], *, attempts: int | None = None) -> T:
    """Run ``fn`` in its own transaction, retrying transient failures.

    Inside an already open transaction ``fn`` simply joins it: the outermost
    caller owns both the transaction and the retry.
    """
    if connection.in_atomic_block:
        return fn()
    attempts = attempts or settings.LEDGER_RETRY_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                return fn()
        except OperationalError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            time.sleep(random.uniform(0, 0.002 * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def retry_transient(fn: Callable[[], T], *, attempts: int | None = None) -> T:
    """Retry ``fn`` (which is itself one transaction, e.g. one statement) on transient failures."""
    attempts = attempts or settings.LEDGER_RETRY_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except OperationalError as exc:
            if attempt == attempts or not is_retryable(exc) or connection.in_atomic_block:
                raise
            time.sleep(random.uniform(0, 0.002 * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"

"""Transactions: the outermost service opens one and retries what PostgreSQL may abort.

Deadlocks and serialization failures are not errors a caller can act on: the
whole transaction is safe to run again, so the outermost service does, a few
times with jittered backoff, and only then lets the failure surface.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from django.conf import settings
from django.db import OperationalError, connection, transaction

T = TypeVar("T")
M = TypeVar("M")

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


_ROW_PLANS: dict[tuple, tuple[list[str], list[int], list[tuple[int, str]]]] = {}
_PLAIN_MODELS: dict[tuple[type, str], bool] = {}


def _needs_no_conversion(model: type) -> bool:
    """Whether the backend returns every field of ``model`` as the field's Python value (no converters)."""
    key = (model, connection.vendor)
    plain = _PLAIN_MODELS.get(key)
    if plain is None:
        fields = model._meta.concrete_fields
        plain = _PLAIN_MODELS[key] = not any(
            connection.ops.get_db_converters(field.get_col(model._meta.db_table)) or field.get_db_converters(connection)
            for field in fields
        )
    return plain


def raw_instances(model: type[M], sql: str, params: Sequence | Mapping) -> list[M]:
    """``model.objects.raw(sql, params)`` for a hot path: the same instances, the column plan built once.

    Each ``RawQuerySet`` maps the cursor's columns to the model's fields again
    on every evaluation, and compiles a queryset to do it: on a path that
    reads one row per call (a payout, a bank event) that cost more than the
    query. Here the plan (which columns are fields, in the order ``from_db``
    wants; which are extra attributes) is kept per model and column list.
    Every concrete field must be selected (``SELECT r.*, …``). A model whose
    values need converting on this backend (JSON, or dates on SQLite) goes
    through ``raw()`` itself. The statement runs once either way.
    """
    if not _needs_no_conversion(model):
        return list(model.objects.raw(sql, params))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = tuple(column[0] for column in cursor.description)
        rows = cursor.fetchall()
    key = (model, columns)
    plan = _ROW_PLANS.get(key)
    if plan is None:
        position = {name: i for i, name in enumerate(columns)}
        fields = model._meta.concrete_fields
        missing = [field.column for field in fields if field.column not in position]
        if missing:
            raise ValueError(f"{model.__name__} rows need the columns {missing}.")
        field_columns = {field.column for field in fields}
        plan = _ROW_PLANS[key] = (
            [field.attname for field in fields],
            [position[field.column] for field in fields],
            [(i, name) for i, name in enumerate(columns) if name not in field_columns],
        )
    attnames, indexes, extras = plan
    db = connection.alias
    instances = []
    for row in rows:
        instance = model.from_db(db, attnames, [row[i] for i in indexes])
        for i, name in extras:
            setattr(instance, name, row[i])
        instances.append(instance)
    return instances

"""The ledger's batch-posting path: many two-leg transfers in a few set-based statements.

Same accounting model and invariants as ``ledger_post`` (see
settlement.ledger.services), for the case where a caller such as a netting
batch settles hundreds of thousands of transfers at once:

* every transfer is one journal entry of two postings — debit one account,
  credit another, same currency, same positive amount — so each entry sums
  to zero per currency (and PostgreSQL's ``posting_balanced`` statement
  trigger checks it again over everything inserted);
* every transfer carries its own idempotency key; a key already posted with
  the same content is skipped (replayed), with other content the whole batch
  is refused with ``IdempotencyConflict``;
* the touched accounts are locked in primary-key order (FOR NO KEY UPDATE),
  then checked — exists, currency, not frozen where debited, and no balance
  below zero once the whole batch is applied — and only then written; a
  refusal writes nothing and leaves the caller's transaction usable.

The caller describes the transfers as SQL (a SELECT over its own tables, see
``ledger_post_transfers``), so that a million rows never pass through Python.
On PostgreSQL the rows are staged in a temporary table and posted by the
server-side function ``hl_ledger_post_batch`` (migrations/sql/0004_ledger_batch.pg.sql).
Elsewhere (SQLite, the embedded default) and with ``LEDGER_POST_PATH = "orm"``
the same checks and writes run through the ORM, slower but alike.

The batch path requires an open transaction: its caller owns it (and the
retry of deadlocks), as with every ledger helper below a service.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Case, F, Value, When
from django.utils import timezone

from config.ids import new_public_id
from settlement.ledger.models import Account, EntryKind, JournalEntry, Posting
from settlement.ledger.services import (
    AccountFrozen,
    AccountNotFound,
    CurrencyMismatch,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidEntry,
    LedgerError,
    Leg,
    _use_postgres_function,
    content_hash,
)

_REFUSALS: dict[str, type[LedgerError]] = {
    cls.code: cls
    for cls in (InvalidEntry, IdempotencyConflict, AccountNotFound, CurrencyMismatch, AccountFrozen, InsufficientFunds)
}

# The columns a transfer source yields, in this order.
TRANSFER_COLUMNS = ("idempotency_key", "debit_account_id", "credit_account_id", "currency", "amount", "metadata")


@dataclass(frozen=True)
class Transfer:
    """One two-leg entry to be: debit ``debit_account_id``, credit ``credit_account_id``."""

    idempotency_key: str
    debit_account_id: int
    credit_account_id: int
    currency: str
    amount: int
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class BatchPostResult:
    created: int  # entries written now
    replayed: int  # keys already posted with the same content, skipped


def ledger_post_transfers(*, kind: str, source_sql: str, params: Sequence[Any] = (), memo: str = "") -> BatchPostResult:
    """Post every transfer that ``source_sql`` selects, all or nothing.

    ``source_sql`` is a SELECT yielding the columns of ``TRANSFER_COLUMNS``
    (metadata as JSON text, or NULL), in the SQL dialect of the connection;
    ``params`` are its parameters. Raises the ledger's refusal errors
    (``InsufficientFunds``, ``AccountFrozen``, ``IdempotencyConflict``, …)
    having written nothing.
    """
    _require_transaction()
    if kind not in EntryKind.values:
        raise InvalidEntry(f"Unknown entry kind {kind!r}.")
    if _use_postgres_function():
        return _post_batch_postgres(kind, source_sql, list(params), memo)
    with connection.cursor() as cursor:
        cursor.execute(source_sql, list(params))
        rows = cursor.fetchall()
    transfers = [
        Transfer(key, int(debit), int(credit), currency, int(amount), json.loads(meta) if meta else None)
        for key, debit, credit, currency, amount, meta in rows
    ]
    return _post_batch_orm(kind, transfers, memo)


def ledger_post_transfer_list(*, kind: str, transfers: Sequence[Transfer], memo: str = "") -> BatchPostResult:
    """Post transfers given as Python values (small batches, tests), all or nothing."""
    _require_transaction()
    if kind not in EntryKind.values:
        raise InvalidEntry(f"Unknown entry kind {kind!r}.")
    if not transfers:
        return BatchPostResult(0, 0)
    if _use_postgres_function():
        source = (
            "SELECT u.key, u.debit, u.credit, u.currency, u.amount, u.metadata"
            " FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::bigint[], %s::text[])"
            " AS u(key, debit, credit, currency, amount, metadata)"
        )
        params = [
            [t.idempotency_key for t in transfers],
            [t.debit_account_id for t in transfers],
            [t.credit_account_id for t in transfers],
            [t.currency for t in transfers],
            [t.amount for t in transfers],
            [json.dumps(t.metadata) if t.metadata is not None else None for t in transfers],
        ]
        return _post_batch_postgres(kind, source, params, memo)
    return _post_batch_orm(kind, list(transfers), memo)


def _require_transaction() -> None:
    if not connection.in_atomic_block:
        raise RuntimeError("The ledger's batch path runs inside the caller's transaction; open one first.")


# --- PostgreSQL --------------------------------------------------------------------


def _post_batch_postgres(kind: str, source_sql: str, params: list[Any], memo: str) -> BatchPostResult:
    with connection.cursor() as cursor:
        # A session-lived staging table, emptied at every commit; the function
        # reads it. Temporary tables have no statistics until analysed, and the
        # joins below are planned on them.
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS hl_ledger_batch ("
            " n bigint NOT NULL, idempotency_key text, content_hash text NOT NULL,"
            " debit_account_id bigint, credit_account_id bigint, currency text,"
            " amount bigint, metadata jsonb) ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE hl_ledger_batch")
        cursor.execute(
            "INSERT INTO hl_ledger_batch"
            " (n, idempotency_key, content_hash, debit_account_id, credit_account_id, currency, amount, metadata)"
            " SELECT row_number() OVER (), s.idempotency_key, "
            "  hl_ledger_transfer_hash(%s, s.debit_account_id, s.credit_account_id, s.currency, s.amount),"
            "  s.debit_account_id, s.credit_account_id, s.currency, s.amount,"
            "  COALESCE(s.metadata::jsonb, '{}'::jsonb)"
            f" FROM ({source_sql})"
            " AS s(idempotency_key, debit_account_id, credit_account_id, currency, amount, metadata)",
            [kind, *params],
        )
        cursor.execute("ANALYZE hl_ledger_batch")
        cursor.execute("SELECT status, account_id, created, replayed FROM hl_ledger_post_batch(%s, %s)", [kind, memo])
        status, account_id, created, replayed = cursor.fetchone()
        cursor.execute("TRUNCATE hl_ledger_batch")
    if status == "created":
        return BatchPostResult(int(created), int(replayed))
    raise _REFUSALS[status](account_id=account_id)


# --- portable (SQLite) ---------------------------------------------------------------


def _post_batch_orm(kind: str, transfers: list[Transfer], memo: str) -> BatchPostResult:
    if not transfers:
        return BatchPostResult(0, 0)
    keys = [t.idempotency_key for t in transfers]
    if len(set(keys)) != len(keys):
        raise InvalidEntry("Two transfers of the batch share an idempotency key.")
    digests: dict[str, str] = {}
    for t in transfers:
        if not t.idempotency_key or len(t.idempotency_key) > 255:
            raise InvalidEntry("An entry needs an idempotency key of 1 to 255 characters.")
        if not isinstance(t.amount, int) or t.amount <= 0 or t.debit_account_id == t.credit_account_id:
            raise InvalidEntry("A transfer moves a positive amount between two different accounts.")
        digests[t.idempotency_key] = content_hash(
            kind=kind,
            legs=[Leg(t.debit_account_id, t.currency, t.amount), Leg(t.credit_account_id, t.currency, -t.amount)],
            reverses_id=None,
        )

    seen: dict[str, str] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found = JournalEntry.objects.filter(idempotency_key__in=chunk).values_list("idempotency_key", "content_hash")
        seen.update(found)
    if any(digests[key] != digest for key, digest in seen.items()):
        raise IdempotencyConflict()
    todo = [t for t in transfers if t.idempotency_key not in seen]
    if not todo:
        return BatchPostResult(0, len(seen))

    deltas: dict[int, int] = defaultdict(int)
    currencies: dict[int, set[str]] = defaultdict(set)
    debited: set[int] = set()
    for t in todo:
        deltas[t.debit_account_id] += t.amount
        deltas[t.credit_account_id] -= t.amount
        currencies[t.debit_account_id].add(t.currency)
        currencies[t.credit_account_id].add(t.currency)
        debited.add(t.debit_account_id)

    accounts = {
        account.id: account
        for account in Account.objects.select_for_update(no_key=True).filter(id__in=list(deltas)).order_by("id")
    }
    for account_id in sorted(deltas):
        account = accounts.get(account_id)
        if account is None:
            raise AccountNotFound(account_id=account_id)
        if currencies[account_id] != {account.currency}:
            raise CurrencyMismatch(account_id=account_id)
        if account.is_frozen and account_id in debited:
            raise AccountFrozen(account_id=account_id)
        if account.balance + account.normal * deltas[account_id] < 0:
            raise InsufficientFunds(account_id=account_id)

    now = timezone.now()
    entries = JournalEntry.objects.bulk_create(
        [
            JournalEntry(
                public_id=new_public_id("je"),
                idempotency_key=t.idempotency_key,
                content_hash=digests[t.idempotency_key],
                kind=kind,
                memo=memo,
                metadata=t.metadata or {},
                created_at=now,
            )
            for t in todo
        ],
        batch_size=500,
    )
    if any(entry.pk is None for entry in entries):  # pragma: no cover - backends without RETURNING
        ids = dict(
            JournalEntry.objects.filter(idempotency_key__in=[t.idempotency_key for t in todo]).values_list(
                "idempotency_key", "id"
            )
        )
        for entry in entries:
            entry.pk = ids[entry.idempotency_key]
    Posting.objects.bulk_create(
        [
            posting
            for entry, t in zip(entries, todo, strict=True)
            for posting in (
                Posting(entry_id=entry.pk, account_id=t.debit_account_id, currency=t.currency, amount=t.amount),
                Posting(entry_id=entry.pk, account_id=t.credit_account_id, currency=t.currency, amount=-t.amount),
            )
        ],
        batch_size=500,
    )
    changed = {account_id: delta for account_id, delta in deltas.items() if delta}
    for start in range(0, len(changed), 500):
        chunk = list(changed.items())[start : start + 500]
        Account.objects.filter(id__in=[account_id for account_id, _ in chunk]).update(
            balance=F("balance")
            + Case(
                *(When(id=account_id, then=Value(accounts[account_id].normal * delta)) for account_id, delta in chunk)
            )
        )
    return BatchPostResult(len(todo), len(seen))

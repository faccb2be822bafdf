"""Posting to the ledger: the only code that writes entries and changes balances.

``ledger_post`` takes legs (account, signed minor amount; positive = debit)
that sum to zero per currency, and an idempotency key. It

* returns the first entry when the key was seen with the same content, and
  raises ``IdempotencyConflict`` (writing nothing) when it was seen with other
  content;
* locks the touched accounts in primary-key order, so that concurrent posts
  neither deadlock nor lose an update;
* refuses to take a balance below zero (``InsufficientFunds``) or to debit a
  frozen account (``AccountFrozen``), writing nothing.

On PostgreSQL the whole post is one call of the server-side function
``hl_ledger_post`` (settlement/migrations/sql/0002_ledger.pg.sql): one round
trip, and when no transaction is open, one implicit transaction. Elsewhere
(SQLite, the embedded default) and when ``LEDGER_POST_PATH = "orm"`` the same
steps run through the ORM. The test suite runs both paths on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from config import money
from config.db import retry_transient, run_in_transaction
from config.errors import DomainError
from config.ids import new_public_id
from corporates.models import Enterprise
from settlement.ledger.models import (
    PLATFORM_KINDS,
    Account,
    AccountKind,
    EntryKind,
    JournalEntry,
    Posting,
    normal_for,
)

# --- errors --------------------------------------------------------------------


class LedgerError(DomainError):
    code = "ledger_error"

    def __init__(self, message: str | None = None, *, account_id: int | None = None, **context: Any) -> None:
        super().__init__(message, account_id=account_id, **context)
        self.account_id = account_id


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"
    title = "The account does not hold enough funds."
    http_status = 422


class AccountFrozen(LedgerError):
    code = "account_frozen"
    title = "The account is frozen and takes no debit."
    http_status = 403


class AccountNotFound(LedgerError):
    code = "account_not_found"
    title = "A ledger account named in the entry does not exist."
    http_status = 404


class CurrencyMismatch(LedgerError):
    code = "currency_mismatch"
    title = "A posting's currency differs from its account's currency."
    http_status = 422


class UnbalancedEntry(LedgerError):
    code = "entry_unbalanced"
    title = "The entry's postings do not sum to zero in each currency."
    http_status = 422


class InvalidEntry(LedgerError):
    code = "entry_invalid"
    title = "The entry is malformed."
    http_status = 422


class IdempotencyConflict(LedgerError):
    code = "idempotency_conflict"
    title = "The idempotency key was already used for a different entry."
    http_status = 409


class EntryAlreadyReversed(LedgerError):
    code = "entry_already_reversed"
    title = "The entry has already been reversed."
    http_status = 409


class EntryNotReversible(LedgerError):
    code = "entry_not_reversible"
    title = "A reversal cannot itself be reversed; post a new entry instead."
    http_status = 409


_ERRORS_BY_CODE: dict[str, type[LedgerError]] = {
    cls.code: cls
    for cls in (
        InsufficientFunds,
        AccountFrozen,
        AccountNotFound,
        CurrencyMismatch,
        UnbalancedEntry,
        IdempotencyConflict,
        EntryAlreadyReversed,
    )
}


# --- values --------------------------------------------------------------------


@dataclass(frozen=True)
class Leg:
    """One posting to be: ``amount`` in minor units, positive debit, negative credit."""

    account_id: int
    currency: str
    amount: int

    @classmethod
    def debit(cls, account: Account, minor: int) -> Leg:
        return cls(account.id, account.currency, minor)

    @classmethod
    def credit(cls, account: Account, minor: int) -> Leg:
        return cls(account.id, account.currency, -minor)


def legs_debit_credit(*, debit: Account, credit: Account, minor: int) -> list[Leg]:
    """The two legs of a simple entry: debit one account, credit another, same amount.

    With the kinds of DESIGN.md: a mint debits the reserve and credits a
    wallet (both grow); a transfer debits the payer's wallet and credits the
    payee's; a redemption debits the wallet and credits in-transit; a paid
    redemption debits in-transit and credits the reserve (both shrink).
    """
    if debit.currency != credit.currency:
        raise CurrencyMismatch("The debited and credited accounts hold different currencies.")
    if minor <= 0:
        raise InvalidEntry("The amount of an entry is a positive number of minor units.")
    return [Leg.debit(debit, minor), Leg.credit(credit, minor)]


@dataclass(frozen=True)
class PostResult:
    entry_id: int
    public_id: str
    created: bool  # False when the idempotency key replayed an earlier entry


# --- validation ------------------------------------------------------------------


def content_hash(*, kind: str, legs: Sequence[Leg], reverses_id: int | None) -> str:
    """What the entry moves, canonically: two posts with equal hashes are the same entry."""
    canonical = {
        "kind": kind,
        "reverses": reverses_id,
        "legs": sorted([leg.account_id, leg.currency, leg.amount] for leg in legs),
    }
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()


_ENTRY_KINDS = frozenset(EntryKind.values)
_MAX_MINOR = 2**63 - 1


def _validate(kind: str, legs: Sequence[Leg], idempotency_key: str, reverses_id: int | None) -> None:
    if not idempotency_key or len(idempotency_key) > 255:
        raise InvalidEntry("An entry needs an idempotency key of 1 to 255 characters.")
    if kind not in _ENTRY_KINDS:
        raise InvalidEntry(f"Unknown entry kind {kind!r}.")
    # The database's CHECK says the same; refusing here keeps the caller's
    # transaction usable and the error truthful (not "already reversed").
    if (kind == EntryKind.REVERSAL) != (reverses_id is not None):
        raise InvalidEntry("A reversal, and only a reversal, points at the entry it reverses.")
    if len(legs) < 2:
        raise InvalidEntry("An entry has at least two postings.")
    totals: dict[str, int] = defaultdict(int)
    for leg in legs:
        if leg.currency not in money.CURRENCY_PLACES:
            raise InvalidEntry(f"Unknown currency {leg.currency!r}.")
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool) or leg.amount == 0:
            raise InvalidEntry("Every posting amount is a non-zero integer of minor units.")
        # The column is a signed 64-bit integer: beyond it PostgreSQL raises
        # DataError, which would abort the caller's transaction.
        if abs(leg.amount) > _MAX_MINOR:
            raise InvalidEntry("A posting amount exceeds what a ledger column holds.")
        totals[leg.currency] += leg.amount
    unbalanced = sorted(code for code, total in totals.items() if total != 0)
    if unbalanced:
        raise UnbalancedEntry(f"Postings do not sum to zero in {', '.join(unbalanced)}.")


# --- posting -----------------------------------------------------------------------


def ledger_post(
    *,
    idempotency_key: str,
    kind: str,
    legs: Sequence[Leg],
    memo: str = "",
    metadata: dict[str, Any] | None = None,
    reverses_id: int | None = None,
) -> PostResult:
    """Post one journal entry (see the module docstring).

    Called outside a transaction it is its own transaction and retries
    deadlocks and serialization failures; called inside one it joins it and
    leaves the retry to the outermost service.
    """
    legs = list(legs)
    _validate(kind, legs, idempotency_key, reverses_id)
    digest = content_hash(kind=kind, legs=legs, reverses_id=reverses_id)
    metadata = metadata or {}
    if _use_postgres_function():
        return retry_transient(lambda: _post_postgres(idempotency_key, kind, legs, memo, metadata, reverses_id, digest))
    return run_in_transaction(lambda: _post_orm(idempotency_key, kind, legs, memo, metadata, reverses_id, digest))


def _use_postgres_function() -> bool:
    return connection.vendor == "postgresql" and settings.LEDGER_POST_PATH != "orm"


def _post_postgres(
    key: str, kind: str, legs: list[Leg], memo: str, metadata: dict, reverses_id: int | None, digest: str
) -> PostResult:
    # hl_ledger_post (sql/0011_ledger_post_v2.pg.sql) answers every refusal as
    # a status, having written nothing, so the caller's transaction stays usable;
    # races with a post of the same key or a reversal of the same entry are
    # settled inside it, after the account locks.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT entry_id, entry_public_id, status, account_id FROM hl_ledger_post("
            "%s, %s, %s, %s, %s, %s::jsonb, %s, %s::bigint[], %s::bigint[], %s::text[])",
            [
                new_public_id("je"),
                key,
                digest,
                kind,
                memo,
                json.dumps(metadata),
                reverses_id,
                [leg.account_id for leg in legs],
                [leg.amount for leg in legs],
                [leg.currency for leg in legs],
            ],
        )
        entry_id, public_id, status, account_id = cursor.fetchone()
    if status in ("created", "replayed"):
        return PostResult(entry_id, public_id, status == "created")
    raise _ERRORS_BY_CODE[status](account_id=account_id)


def _post_orm(
    key: str, kind: str, legs: list[Leg], memo: str, metadata: dict, reverses_id: int | None, digest: str
) -> PostResult:
    existing = JournalEntry.objects.filter(idempotency_key=key).values_list("id", "public_id", "content_hash").first()
    if existing:
        return _replay(existing, digest)

    deltas: dict[int, int] = defaultdict(int)
    debited: set[int] = set()
    currencies: dict[int, set[str]] = defaultdict(set)
    for leg in legs:
        deltas[leg.account_id] += leg.amount
        currencies[leg.account_id].add(leg.currency)
        if leg.amount > 0:
            debited.add(leg.account_id)

    # Lock in primary-key order; FOR NO KEY UPDATE so that other transactions'
    # posting inserts (which take FOR KEY SHARE through the foreign key) do not
    # deadlock against us.
    accounts = {
        account.id: account
        for account in Account.objects.select_for_update(no_key=True).filter(id__in=deltas).order_by("id")
    }
    # Look again now that we hold the locks: a post of the same key, or a
    # reversal of the same entry, may have committed while we waited for them.
    # It, not the funds it has taken, decides the answer.
    existing = JournalEntry.objects.filter(idempotency_key=key).values_list("id", "public_id", "content_hash").first()
    if existing:
        return _replay(existing, digest)
    if reverses_id is not None and JournalEntry.objects.filter(reverses_id=reverses_id).exists():
        raise EntryAlreadyReversed()
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

    try:
        # A savepoint: a unique violation here (a concurrent post of the same
        # key on other accounts) must not abort the transaction we look in next.
        with transaction.atomic():
            entry = JournalEntry.objects.create(
                idempotency_key=key,
                content_hash=digest,
                kind=kind,
                memo=memo,
                metadata=metadata,
                reverses_id=reverses_id,
                created_at=timezone.now(),
            )
    except IntegrityError:
        # Another transaction committed the same key (or reversal) after our
        # check; look again (the retry in run_in_transaction re-runs us).
        existing = (
            JournalEntry.objects.filter(idempotency_key=key).values_list("id", "public_id", "content_hash").first()
        )
        if existing:
            return _replay(existing, digest)
        raise EntryAlreadyReversed() from None
    Posting.objects.bulk_create(
        Posting(entry=entry, account_id=leg.account_id, currency=leg.currency, amount=leg.amount) for leg in legs
    )
    for account_id, delta in deltas.items():
        if delta:
            Account.objects.filter(id=account_id).update(balance=F("balance") + accounts[account_id].normal * delta)
    return PostResult(entry.id, entry.public_id, True)


def _replay(existing: tuple[int, str, str], digest: str) -> PostResult:
    entry_id, public_id, stored_digest = existing
    if stored_digest != digest:
        raise IdempotencyConflict()
    return PostResult(entry_id, public_id, False)


def ledger_reverse(*, entry_id: int, idempotency_key: str, memo: str = "") -> PostResult:
    """Post the exact opposite of an entry, pointing at it. An entry is reversed at most once."""
    original = JournalEntry.objects.filter(id=entry_id).first()
    if original is None:
        raise InvalidEntry("No such entry.")
    if original.kind == EntryKind.REVERSAL:
        raise EntryNotReversible()
    legs = [Leg(p.account_id, p.currency, -p.amount) for p in original.postings.all()]
    return ledger_post(
        idempotency_key=idempotency_key,
        kind=EntryKind.REVERSAL,
        legs=legs,
        memo=memo or f"Reversal of {original.public_id}",
        reverses_id=original.id,
    )


# --- accounts -----------------------------------------------------------------------


def account_open(*, kind: str, currency: str, enterprise: Enterprise | None = None) -> Account:
    """Open (or return the existing) account. Idempotent."""
    money.parse_currency(currency)
    account, _ = Account.objects.get_or_create(
        enterprise=enterprise, currency=currency, kind=kind, defaults={"normal": normal_for(kind)}
    )
    return account


def wallets_open(*, enterprise: Enterprise) -> list[Account]:
    """One wallet per platform currency; the approval hook of corporates."""
    return [
        account_open(kind=AccountKind.WALLET, currency=code, enterprise=enterprise) for code in money.CURRENCY_CODES
    ]


def platform_accounts_open() -> list[Account]:
    return [account_open(kind=kind, currency=code) for kind in PLATFORM_KINDS for code in money.CURRENCY_CODES]


def account_freeze(*, account: Account, frozen: bool = True) -> Account:
    Account.objects.filter(pk=account.pk).update(is_frozen=frozen)
    account.refresh_from_db(fields=["is_frozen"])
    return account


def accounts_by_id(ids: Iterable[int]) -> dict[int, Account]:
    return {account.id: account for account in Account.objects.filter(id__in=list(ids))}

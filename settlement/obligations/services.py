"""Writes on obligations: create (one or in bulk), cancel, approve.

An obligation records that its payer owes its payee an amount by a value
date; it moves no money (a netting batch settles it, see settlement.netting).
Bulk creation is all or nothing: every row valid → every row created in one
transaction; any row invalid → nothing created and the list of every row's
errors. At scale the rows reach PostgreSQL through COPY, after validation in
memory and one query per lookup (payees, existing references) for the whole
request — never a query per row.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection
from django.utils import timezone

from config import money
from config.db import run_in_transaction
from config.errors import DomainError
from corporates.models import ApiScope, Enterprise, EnterpriseStatus
from corporates.onboarding.limits import limits_all_for
from corporates.permissions import Principal, approval_check, principal_person
from corporates.services import enterprise_require_active
from settlement.netting.cut import NettingInProgress, batch_holding, writers_guard
from settlement.obligations.models import Obligation, ObligationStatus

# --- errors --------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """One refusal of one row: ``row`` is its 0-based index in the request."""

    row: int
    field: str
    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "code": self.code, "message": self.message}


class ObligationsInvalid(DomainError):
    code = "obligations_invalid"
    title = "Some rows are invalid; no obligation was created."
    http_status = 422

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} error(s); no obligation was created.", errors=[e.to_json() for e in errors])
        self.errors = errors


class ObligationInvalid(DomainError):
    """A single obligation was refused; ``code`` is the row error's code (payee_unknown, value_date_past, …)."""

    code = "obligation_invalid"
    title = "The obligation is invalid."
    http_status = 422

    def __init__(self, error: RowError) -> None:
        super().__init__(error.message, field=error.field)
        self.code = error.code
        self.field = error.field


class TooManyRows(DomainError):
    code = "too_many_rows"
    title = "Too many obligations in one request."
    http_status = 413


class ObligationNotCancellable(DomainError):
    code = "obligation_not_cancellable"
    title = "Only a pending obligation can be cancelled, by its payer, before the cut-off takes it."


class ObligationNotApprovable(DomainError):
    code = "obligation_not_approvable"
    title = "The obligation does not await approval."


# --- values ----------------------------------------------------------------------


@dataclass
class BulkCreateResult:
    created: int
    public_ids: list[str] = field(default_factory=list)
    needs_approval: int = 0


# A valid row, as a plain tuple (built 50,000 times a second):
# (payee_id, currency, amount, value_date, external_reference, memo, needs_approval).
_ValidRow = tuple[int, str, int, date, str, str, bool]


_REFERENCE_MAX = Obligation._meta.get_field("external_reference").max_length
_MEMO_MAX = Obligation._meta.get_field("memo").max_length
_COLUMNS = (
    "public_id",
    "payer_id",
    "payee_id",
    "currency",
    "amount",
    "value_date",
    "external_reference",
    "memo",
    "status",
    "needs_approval",
    "created_by_id",
    "reason",
    "roll_count",
    "created_at",
    "updated_at",
)


def limits_for(*, enterprise: Enterprise) -> dict[str, tuple[int, int]]:
    """Per currency: (single payment limit, approval threshold) of the payer, in minor units.

    The effective per-enterprise limits of corporates (defaults from
    settings.KYB_DEFAULT_LIMITS, overridden per enterprise in admin).
    """
    return {
        code: (money.to_minor(limits.single_payment, code), money.to_minor(limits.approval_threshold, code))
        for code, limits in limits_all_for(enterprise=enterprise).items()
    }


# --- create --------------------------------------------------------------------------


def obligation_create(
    *,
    payer: Enterprise,
    payee: str,
    amount: str,
    currency: str,
    value_date: date | str,
    external_reference: str,
    memo: str = "",
    created_by: Principal | None = None,
) -> Obligation:
    """Create one obligation (the payer's); raises ``ObligationInvalid`` with the first refusal."""
    row = {
        "payee": payee,
        "amount": amount,
        "currency": currency,
        "value_date": value_date,
        "external_reference": external_reference,
        "memo": memo,
    }
    try:
        result = obligations_create_bulk(payer=payer, rows=[row], created_by=created_by)
    except ObligationsInvalid as exc:
        raise ObligationInvalid(exc.errors[0]) from None
    return Obligation.objects.get(public_id=result.public_ids[0])


def obligations_create_bulk(
    *, payer: Enterprise, rows: Sequence[Mapping[str, Any]], created_by: Principal | None = None
) -> BulkCreateResult:
    """Create every row as an obligation of ``payer``, or none (``ObligationsInvalid`` lists every row's errors).

    A row: ``payee`` (public id), ``amount`` (decimal string), ``currency``,
    ``value_date`` (ISO date or date), ``external_reference``, optional ``memo``.
    """
    enterprise_require_active(enterprise=payer)
    if len(rows) > settings.OBLIGATION_BULK_MAX_ROWS:
        raise TooManyRows(f"At most {settings.OBLIGATION_BULK_MAX_ROWS} obligations per request.")
    if not rows:
        return BulkCreateResult(created=0)

    def create() -> BulkCreateResult:
        valid, errors = _validate_rows(payer, rows)
        if errors:
            raise ObligationsInvalid(errors)
        writers_guard()  # a cut-off waits for these rows, or they come after it
        return _insert(payer, valid, created_by)

    try:
        return run_in_transaction(create)
    except IntegrityError as exc:
        # Another request of the same payer committed one of these references
        # between our check and our insert: validate again to name the rows.
        if "obligation_reference_unique" not in str(exc):
            raise
        _, errors = _validate_rows(payer, rows)
        raise ObligationsInvalid(errors) from None


def _validate_rows(payer: Enterprise, rows: Sequence[Mapping[str, Any]]) -> tuple[list[_ValidRow], list[RowError]]:
    today = timezone.localdate()
    limits = limits_for(enterprise=payer)
    # Strings from outside may hold NUL, which PostgreSQL text refuses: such a
    # key names nothing, and such a reference or memo is invalid.
    payee_keys = {
        row.get("payee")
        for row in rows
        if isinstance(row, Mapping) and isinstance(row.get("payee"), str) and "\x00" not in row["payee"]
    }
    payees = {
        public_id: (pk, status)
        for public_id, pk, status in Enterprise.objects.filter(public_id__in=payee_keys).values_list(
            "public_id", "id", "status"
        )
    }
    references = [row.get("external_reference") for row in rows if isinstance(row, Mapping)]
    existing = set(
        Obligation.objects.filter(
            payer=payer, external_reference__in=[r for r in references if isinstance(r, str) and "\x00" not in r]
        ).values_list("external_reference", flat=True)
    )

    valid: list[_ValidRow] = []
    errors: list[RowError] = []
    seen_references: dict[str, int] = {}
    dates: dict[Any, date | None] = {}  # a request carries few distinct value dates
    approved = EnterpriseStatus.APPROVED
    parse_currency, parse_amount, to_minor = money.parse_currency, money.parse_amount, money.to_minor
    # Hot loop (10,000 rows a request, 50,000 rows a second): plain locals, no per-row closures.
    for index, row in enumerate(rows):
        if type(row) is not dict and not isinstance(row, Mapping):
            errors.append(RowError(index, "", "row_malformed", "Each row is an object."))
            continue
        row_errors: list[RowError] = []

        payee_key = row.get("payee")
        payee = payees.get(payee_key) if isinstance(payee_key, str) else None
        if payee is None:
            row_errors.append(RowError(index, "payee", "payee_unknown", "No enterprise has this id."))
        elif payee[0] == payer.pk:
            row_errors.append(RowError(index, "payee", "payee_is_payer", "The payee must be another enterprise."))
        elif payee[1] != approved:
            row_errors.append(RowError(index, "payee", "payee_inactive", "The payee is not approved, or is frozen."))

        currency = minor = None
        try:
            currency = parse_currency(row.get("currency"))
            minor = to_minor(parse_amount(row.get("amount"), currency), currency)
        except money.MoneyParseError as exc:
            row_errors.append(RowError(index, exc.field, exc.code, exc.message))
        if minor is not None and minor > limits[currency][0]:
            row_errors.append(
                RowError(index, "amount", "over_single_payment_limit", "The amount is over the single-payment limit.")
            )

        raw_date = row.get("value_date")
        try:
            value_date = dates[raw_date]
        except (KeyError, TypeError):
            value_date = _parse_date(raw_date)
            if isinstance(raw_date, str | date):
                dates[raw_date] = value_date
        if value_date is None:
            row_errors.append(
                RowError(index, "value_date", "value_date_invalid", "The value date is an ISO date (YYYY-MM-DD).")
            )
        elif value_date < today:
            row_errors.append(RowError(index, "value_date", "value_date_past", "The value date is in the past."))

        reference = row.get("external_reference")
        if (
            not isinstance(reference, str)
            or not reference.strip()
            or len(reference) > _REFERENCE_MAX
            or "\x00" in reference
        ):
            row_errors.append(
                RowError(
                    index,
                    "external_reference",
                    "external_reference_invalid",
                    f"The external reference is a non-empty string of at most {_REFERENCE_MAX} characters.",
                )
            )
        elif reference in existing:
            row_errors.append(
                RowError(
                    index,
                    "external_reference",
                    "duplicate_external_reference",
                    "An obligation already has this reference.",
                )
            )
        elif reference in seen_references:
            row_errors.append(
                RowError(
                    index,
                    "external_reference",
                    "duplicate_external_reference",
                    f"Row {seen_references[reference]} of this request has the same reference.",
                )
            )
        else:
            seen_references[reference] = index

        memo = row.get("memo") or ""
        if not isinstance(memo, str) or len(memo) > _MEMO_MAX or "\x00" in memo:
            row_errors.append(
                RowError(index, "memo", "memo_invalid", f"The memo is a string of at most {_MEMO_MAX} characters.")
            )

        if row_errors:
            errors.extend(row_errors)
        elif not errors:  # once a row failed nothing will be created: stop building rows
            valid.append((payee[0], currency, minor, value_date, reference, memo, minor > limits[currency][1]))
    return valid, errors


def _parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _insert(payer: Enterprise, valid: list[_ValidRow], created_by: Principal | None) -> BulkCreateResult:
    now = timezone.now()
    public_ids = public_ids_new("obl", len(valid))
    # The maker is a person: the portal user, or the admin behind the API key.
    person = principal_person(created_by) if created_by is not None else None
    created_by_id = person.pk if person is not None else None
    pending = ObligationStatus.PENDING.value
    records = (
        (public_id, payer.pk, payee_id, currency, amount, value_date, reference, memo, pending, needs_approval)
        + (created_by_id, "", 0, now, now)
        for public_id, (payee_id, currency, amount, value_date, reference, memo, needs_approval) in zip(
            public_ids, valid, strict=True
        )
    )
    if connection.vendor == "postgresql":
        # COPY: the fastest way into PostgreSQL, one stream for the whole request.
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY settlement_obligation ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for record in records:
                    copy.write_row(record)
    else:
        Obligation.objects.bulk_create(
            (Obligation(**dict(zip(_COLUMNS, record, strict=True))) for record in records), batch_size=500
        )
    return BulkCreateResult(created=len(valid), public_ids=public_ids, needs_approval=sum(1 for row in valid if row[6]))


# Public ids for many rows at once: one CSPRNG call per request instead of one
# per row. Bytes 248–255 are dropped so that "% 62" picks every letter evenly.
# Each id starts with the time in milliseconds (8 base62 digits, as a UUIDv7
# starts with its time) and ends with 20 random ones (~119 bits): a request's
# rows go to the right edge of the public_id index instead of one random
# page each of an index that outgrows the buffer cache at a million rows.
_ALPHABET = (string.ascii_letters + string.digits).encode()
_SORTED_ALPHABET = "".join(sorted(string.ascii_letters + string.digits))  # so that ids sort by time
_BYTE_TO_CHAR = bytes(_ALPHABET[b % len(_ALPHABET)] for b in range(256))
_UNEVEN_BYTES = bytes(range(256 - 256 % len(_ALPHABET), 256))
_ID_LENGTH = 20
_TIME_LENGTH = 8  # 62**8 milliseconds: until the year 8888


def _time_prefix() -> str:
    value = time.time_ns() // 1_000_000
    digits = []
    for _ in range(_TIME_LENGTH):
        value, digit = divmod(value, 62)
        digits.append(_SORTED_ALPHABET[digit])
    return "".join(reversed(digits))


def public_ids_new(prefix: str, count: int) -> list[str]:
    need = count * _ID_LENGTH
    chars = bytearray()
    while len(chars) < need:
        chars += secrets.token_bytes(need - len(chars) + need // 16 + 16).translate(_BYTE_TO_CHAR, _UNEVEN_BYTES)
    text = chars[:need].decode()
    head = f"{prefix}_{_time_prefix()}"
    return [head + text[i : i + _ID_LENGTH] for i in range(0, need, _ID_LENGTH)]


# --- cancel and approve ------------------------------------------------------------------


def obligation_cancel(*, obligation: Obligation, payer: Enterprise, reason: str = "") -> Obligation:
    """The payer cancels a pending obligation. A cut-off that took it first wins (in_batch: refused)."""
    if obligation.payer_id != payer.pk:
        raise ObligationNotCancellable("Only the payer may cancel an obligation.")

    def cancel() -> int:
        writers_guard()
        if batch_holding(obligation.pk) is not None:
            raise ObligationNotCancellable("The obligation is in a netting batch.")
        now = timezone.now()
        # A conditional UPDATE: two cancels of one obligation serialize on the row.
        return Obligation.objects.filter(pk=obligation.pk, status=ObligationStatus.PENDING).update(
            status=ObligationStatus.CANCELLED,
            cancelled_at=now,
            updated_at=now,
            reason=(reason or "Cancelled by the payer.")[:300],
        )

    changed = run_in_transaction(cancel)
    obligation.refresh_from_db()
    if not changed:
        raise ObligationNotCancellable(f"The obligation is {obligation.get_status_display().lower()}.")
    return obligation


def obligation_approve(*, obligation: Obligation, approver: Principal) -> Obligation:
    """A checker or admin of the payer, another person than its maker, approves an obligation above the threshold.

    ``approver`` is a portal user or an API key (the person behind it is its
    creator; see ``corporates.permissions.approval_check`` for the refusals:
    checker_is_maker, role_not_permitted, approver_unidentified, …). The
    obligation's maker is ``created_by``: the user, or the person behind the
    key that created it.
    """
    approval_check(
        maker=obligation.created_by,
        checker=approver,
        enterprise_id=obligation.payer_id,
        scope=ApiScope.PAYMENTS,
    )
    enterprise_require_active(enterprise=Enterprise.objects.get(pk=obligation.payer_id))

    def approve() -> int:
        writers_guard()
        # Approved now, it would fall under a running batch's cut after the
        # batch had netted: it waits until the batch ends (seconds).
        if batch_holding(obligation.pk, once_approved=True) is not None:
            raise NettingInProgress()
        now = timezone.now()
        # A conditional UPDATE: two approvals of one obligation serialize on the row.
        return Obligation.objects.filter(pk=obligation.pk, status=ObligationStatus.PENDING, needs_approval=True).update(
            needs_approval=False, approved_by=principal_person(approver), approved_at=now, updated_at=now
        )

    changed = run_in_transaction(approve)
    if not changed:
        raise ObligationNotApprovable()
    obligation.refresh_from_db()
    return obligation

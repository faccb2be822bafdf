"""Statements: an enterprise wallet's postings with a running balance (a read).

The running balance is the wallet's balance in its normal orientation (credit
normal: money in is positive), starting from the balance carried in before
the first day of the period. Dates are calendar days in the platform's time
zone (settings.TIME_ZONE); both ends are inclusive.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Sum
from django.utils import timezone

from config import money
from corporates.models import Enterprise
from settlement.ledger.models import Account, AccountKind, Posting


@dataclass(frozen=True)
class StatementLine:
    entry_id: str
    created_at: datetime
    kind: str
    memo: str
    amount_minor: int  # signed from the holder's side: positive money in, negative money out
    balance_minor: int


@dataclass(frozen=True)
class Statement:
    currency: str
    date_from: date | None
    date_to: date | None
    opening_minor: int
    closing_minor: int
    lines: list[StatementLine]

    def as_decimal(self, minor: int):
        return money.from_minor(minor, self.currency)


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def statement_for(
    *, enterprise: Enterprise, currency: str, date_from: date | None = None, date_to: date | None = None
) -> Statement:
    """The enterprise's wallet statement in ``currency`` between two dates (inclusive)."""
    currency = money.parse_currency(currency)
    try:
        wallet = Account.objects.get(enterprise=enterprise, currency=currency, kind=AccountKind.WALLET)
    except Account.DoesNotExist:
        return Statement(currency, date_from, date_to, 0, 0, [])
    postings = Posting.objects.filter(account=wallet)
    opening = 0
    if date_from is not None:
        before = postings.filter(entry__created_at__lt=_day_start(date_from)).aggregate(total=Sum("amount"))
        opening = wallet.normal * (before["total"] or 0)
        postings = postings.filter(entry__created_at__gte=_day_start(date_from))
    if date_to is not None:
        postings = postings.filter(entry__created_at__lt=_day_start(date_to + timedelta(days=1)))
    lines = list(_running(postings.select_related("entry").order_by("id"), wallet.normal, opening))
    closing = lines[-1].balance_minor if lines else opening
    return Statement(currency, date_from, date_to, opening, closing, lines)


def _running(postings, normal: int, opening: int) -> Iterator[StatementLine]:
    balance = opening
    for posting in postings.iterator(chunk_size=2000):
        signed = normal * posting.amount
        balance += signed
        yield StatementLine(
            entry_id=posting.entry.public_id,
            created_at=posting.entry.created_at,
            kind=posting.entry.get_kind_display(),
            memo=posting.entry.memo,
            amount_minor=signed,
            balance_minor=balance,
        )

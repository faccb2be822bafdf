"""Ledger reads for ERP clients: balances and the wallet statement (GET /api/v1/balances, /accounts/…/statement).

The statement is the enterprise's wallet postings in one currency, oldest
first, each with the wallet balance right after it. Postings are ordered by
id, so the balance after a row is the sum of the account's postings up to
it: each page (and the CSV export) asks the database once for the sum
before its first row, then adds row by row. That stays right on every page
of a cursor walk, whatever date range is asked for, and costs one aggregate
per page rather than one per row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta

import django_filters
from django.db.models import QuerySet, Sum
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config import money
from config.api.fields import MoneyField
from config.api.pagination import ApiCursorPagination
from config.api.renderers import CSVRenderer
from corporates.api.tenancy import request_enterprise
from corporates.models import Enterprise
from settlement.ledger.models import Account, AccountKind, Posting
from settlement.ledger.selectors import balances_for

# --- reads -------------------------------------------------------------------------


def statement_postings(*, enterprise: Enterprise, currency: str) -> tuple[Account | None, QuerySet]:
    """The enterprise's wallet in ``currency`` and its postings (filter and order them as you need)."""
    wallet = Account.objects.filter(enterprise=enterprise, currency=currency, kind=AccountKind.WALLET).first()
    if wallet is None:  # not approved yet: no wallets, an empty statement
        return None, Posting.objects.none()
    return wallet, Posting.objects.filter(account=wallet).select_related("entry")


def statement_lines(*, wallet: Account, postings: Iterable[Posting]) -> Iterator[dict]:
    """Statement lines for postings of ``wallet`` in ascending id order, each with the balance after it."""
    balance: int | None = None
    for posting in postings:
        if balance is None:
            before = Posting.objects.filter(account=wallet, id__lt=posting.id).aggregate(total=Sum("amount"))
            balance = wallet.normal * (before["total"] or 0)
        signed = wallet.normal * posting.amount  # from the holder's side: positive is money in
        balance += signed
        yield {
            "entry_id": posting.entry.public_id,
            "created_at": posting.entry.created_at,
            "kind": posting.entry.kind,
            "memo": posting.entry.memo,
            "direction": "credit" if signed > 0 else "debit",
            "amount": money.Amount(abs(signed), posting.currency),
            "balance_after": money.Amount(balance, posting.currency),
        }


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


class StatementFilter(django_filters.FilterSet):
    """Calendar days in the platform's time zone (settings.TIME_ZONE); both ends inclusive."""

    date_from = django_filters.DateFilter(method="filter_from", help_text="First day (YYYY-MM-DD), inclusive.")
    date_to = django_filters.DateFilter(method="filter_to", help_text="Last day (YYYY-MM-DD), inclusive.")

    class Meta:
        model = Posting
        fields = ["date_from", "date_to"]

    def filter_from(self, queryset, name, value):
        return queryset.filter(entry__created_at__gte=_day_start(value))

    def filter_to(self, queryset, name, value):
        if value >= date.max:  # no day after it to stop before
            return queryset
        return queryset.filter(entry__created_at__lt=_day_start(value + timedelta(days=1)))


# --- shapes --------------------------------------------------------------------------


class StatementLineSerializer(serializers.Serializer):
    entry_id = serializers.CharField(help_text="Journal entry (je_…).")
    created_at = serializers.DateTimeField()
    kind = serializers.CharField()
    memo = serializers.CharField(allow_blank=True)
    direction = serializers.ChoiceField(choices=["credit", "debit"], help_text="credit: money in; debit: money out.")
    amount = MoneyField()
    balance_after = MoneyField(allow_zero=True)


class BalancesSerializer(serializers.Serializer):
    balances = serializers.ListField(child=MoneyField(allow_zero=True))


# --- views ---------------------------------------------------------------------------


class BalancesView(APIView):
    @extend_schema(
        operation_id="balances_retrieve", responses=BalancesSerializer, summary="Wallet balance per currency"
    )
    def get(self, request):
        balances = balances_for(enterprise=request_enterprise(request))
        amounts = [money.Amount(balances[code], code) for code in money.CURRENCY_CODES]
        return Response(BalancesSerializer({"balances": amounts}).data)


class StatementPagination(ApiCursorPagination):
    ordering = "id"  # oldest first, like a bank statement


CSV_COLUMNS = ["entry_id", "created_at", "kind", "memo", "direction", "amount", "currency", "balance_after"]


def _csv_safe(text: str) -> str:
    # A memo beginning with =, +, - or @ would run as a formula in a spreadsheet.
    return f"'{text}" if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(wallet: Account | None, postings: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    if wallet is None:
        return
    for line in statement_lines(wallet=wallet, postings=postings.iterator(chunk_size=2000)):
        yield writer.writerow(
            [
                line["entry_id"],
                line["created_at"].isoformat(),
                line["kind"],
                _csv_safe(line["memo"]),
                line["direction"],
                line["amount"].to_json()["amount"],
                line["amount"].currency,
                line["balance_after"].to_json()["amount"],
            ]
        )


class StatementView(generics.ListAPIView):
    serializer_class = StatementLineSerializer
    filterset_class = StatementFilter
    pagination_class = StatementPagination
    renderer_classes = [JSONRenderer, CSVRenderer]

    def _wallet_and_postings(self) -> tuple[Account | None, QuerySet]:
        currency = self.kwargs["currency"]
        if currency not in money.CURRENCY_PLACES:
            raise NotFound(f"No account in {currency}; currencies are {', '.join(money.CURRENCY_CODES)}.")
        return statement_postings(enterprise=request_enterprise(self.request), currency=currency)

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return Posting.objects.none()
        return self._wallet_and_postings()[1]

    @extend_schema(
        summary="Wallet statement with running balance (JSON pages, or the whole range as CSV)",
        parameters=[
            OpenApiParameter("currency", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(money.CURRENCY_CODES)),
        ],
        responses={
            200: OpenApiResponse(
                response=StatementLineSerializer(many=True),
                description="JSON: a cursor page. With Accept: text/csv, every line of the range as CSV.",
            )
        },
    )
    def get(self, request, *args, **kwargs):
        wallet, postings = self._wallet_and_postings()
        postings = self.filter_queryset(postings).order_by("id")
        if request.accepted_renderer.format == "csv":
            response = StreamingHttpResponse(_csv_rows(wallet, postings), content_type="text/csv")
            filename = f"statement-{kwargs['currency']}.csv"
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            return response
        page = self.paginate_queryset(postings)
        lines = list(statement_lines(wallet=wallet, postings=page)) if wallet is not None else []
        return self.get_paginated_response(self.get_serializer(lines, many=True).data)

"""CSV of swap history, one format for the portal and the API."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from config import money

SWAP_CSV_COLUMNS = [
    "swap_id",
    "quote_id",
    "accepted_at",
    "sell_amount",
    "sell_currency",
    "buy_amount",
    "buy_currency",
    "client_rate",
    "journal_entry",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def swaps_csv_rows(swaps: QuerySet) -> Iterator[str]:
    # Every cell is an id, a time, a code or a number: nothing a spreadsheet could run as a formula.
    writer = csv.writer(_Echo())
    yield writer.writerow(SWAP_CSV_COLUMNS)
    for swap in swaps.select_related("quote", "journal_entry").iterator(chunk_size=2000):
        yield writer.writerow(
            [
                swap.public_id,
                swap.quote.public_id,
                swap.accepted_at.isoformat(),
                money.format_amount(swap.sell_amount, swap.sell_currency),
                swap.sell_currency,
                money.format_amount(swap.buy_amount, swap.buy_currency),
                swap.buy_currency,
                str(swap.client_rate),
                swap.journal_entry.public_id,
            ]
        )


def swaps_csv_response(swaps: QuerySet) -> StreamingHttpResponse:
    response = StreamingHttpResponse(swaps_csv_rows(swaps), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="fx-swaps.csv"'
    return response

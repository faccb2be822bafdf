"""Reads of netting for the portal and the API: an enterprise's batches, positions and obligations in a batch."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import Q, QuerySet

from config import money
from corporates.models import Enterprise
from settlement.netting.models import NettingBatch, NettingPosition
from settlement.obligations.models import Obligation


def batches_for(*, enterprise: Enterprise) -> QuerySet[NettingBatch]:
    """The batches the enterprise took part in (had an obligation in): the only ones it may see."""
    return NettingBatch.objects.filter(positions__enterprise=enterprise).distinct()


def positions_for(*, enterprise: Enterprise, batch: NettingBatch) -> list[NettingPosition]:
    return list(NettingPosition.objects.filter(batch=batch, enterprise=enterprise).order_by("currency"))


def obligations_in_batch(*, enterprise: Enterprise, batch: NettingBatch) -> QuerySet[Obligation]:
    return (
        Obligation.objects.filter(Q(payer=enterprise) | Q(payee=enterprise), batch=batch)
        .select_related("payer", "payee")
        .order_by("id")
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_HEADER = [
    "obligation",
    "direction",
    "counterparty",
    "currency",
    "amount",
    "value_date",
    "external_reference",
    "status",
    "reason",
]


def obligations_in_batch_csv(*, enterprise: Enterprise, batch: NettingBatch) -> Iterator[str]:
    """The enterprise's obligations in the batch as CSV lines, streamed from the database in chunks.

    The payer's external reference is shown to the payer only.
    """
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    rows = (
        Obligation.objects.filter(Q(payer=enterprise) | Q(payee=enterprise), batch=batch)
        .order_by("id")
        .values_list(
            "public_id", "payer_id", "payer__public_id", "payee__public_id", "currency", "amount", "value_date",
            "external_reference", "status", "reason",
        )
    )  # fmt: skip
    for public_id, payer_id, payer, payee, currency, amount, value_date, reference, state, reason in rows.iterator(
        chunk_size=2000
    ):
        outgoing = payer_id == enterprise.pk
        yield writer.writerow(
            [public_id, "outgoing" if outgoing else "incoming", payee if outgoing else payer, currency,
             money.format_amount(money.from_minor(amount, currency), currency), value_date.isoformat(),
             reference if outgoing else "", state, reason]
        )  # fmt: skip

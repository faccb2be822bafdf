"""Two concurrent accepts of one quote, on real PostgreSQL connections: exactly one wins."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from fx import services
from fx.models import Quote, Swap
from settlement.ledger.models import EntryKind, JournalEntry
from settlement.ledger.selectors import ledger_verify


@pytest.fixture(autouse=True)
def _both_sql_paths(sql_path):
    """Every test here runs through the lean SQL path and the ORM path."""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(2))
def test_concurrent_double_accept_makes_exactly_one_swap(funded, rates, inventory, now, attempt):
    enterprise = funded()
    quote = services.quote_create(
        enterprise=enterprise, sell_currency="USD", buy_currency="CNH", sell_amount=Decimal("500.00"), now=now
    )
    barrier = threading.Barrier(4)
    outcomes: list[object] = []
    lock = threading.Lock()

    def accept() -> None:
        try:
            barrier.wait(timeout=10)
            result: object = services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now)
        except Exception as exc:  # recorded and asserted on below
            result = exc
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=accept) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    swaps = [o for o in outcomes if isinstance(o, Swap)]
    refusals = [o for o in outcomes if not isinstance(o, Swap)]
    assert len(swaps) == 1, outcomes
    assert all(isinstance(o, services.QuoteAlreadyAccepted) for o in refusals), refusals
    assert Swap.objects.count() == 1
    assert JournalEntry.objects.filter(kind=EntryKind.FX_SWAP).count() == 1
    assert Quote.objects.get(pk=quote.pk).status == "accepted"
    assert ledger_verify().ok

"""Concurrent accepts on real PostgreSQL connections: one quote accepted once; the floor holds under a rush."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from config import money
from fx import services
from fx.models import InventoryAlert, InventoryFloor, Quote, Swap
from settlement.ledger.models import AccountKind, EntryKind, JournalEntry
from settlement.ledger.selectors import ledger_verify, platform_account


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


@pytest.mark.django_db(transaction=True)
def test_concurrent_accepts_never_take_the_inventory_below_its_floor(funded, rates, inventory, now):
    """Six enterprises accept at once; the floor leaves room for exactly three of their swaps."""
    enterprises = [funded() for _ in range(6)]
    quotes = [
        services.quote_create(
            enterprise=enterprise, sell_currency="HKD", buy_currency="USD", buy_amount=Decimal("1000.00"), now=now
        )
        for enterprise in enterprises
    ]
    held = platform_account(kind=AccountKind.FX_INVENTORY, currency="USD").balance  # minor units
    floor = money.from_minor(held, "USD") - Decimal("3000.00")
    InventoryFloor.objects.update_or_create(currency="USD", defaults={"floor": floor})
    barrier = threading.Barrier(len(quotes))
    outcomes: list[object] = []
    lock = threading.Lock()

    def accept(quote) -> None:
        try:
            barrier.wait(timeout=10)
            result: object = services.quote_accept(enterprise=quote.enterprise, public_id=quote.public_id, now=now)
        except Exception as exc:  # recorded and asserted on below
            result = exc
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=accept, args=(quote,)) for quote in quotes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    swaps = [o for o in outcomes if isinstance(o, Swap)]
    refusals = [o for o in outcomes if not isinstance(o, Swap)]
    assert len(swaps) == 3, outcomes
    assert all(isinstance(o, services.InventoryFloorBreached) for o in refusals), refusals
    assert platform_account(kind=AccountKind.FX_INVENTORY, currency="USD").balance == held - 3 * 100_000
    assert money.from_minor(platform_account(kind=AccountKind.FX_INVENTORY, currency="USD").balance, "USD") == floor
    assert InventoryAlert.objects.filter(currency="USD").get().occurrences == 3
    assert ledger_verify().ok

"""PostgreSQL keeps quotes as shown (only open -> accepted) and swaps unchanged, whoever writes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction

from fx import services
from fx.models import Quote, Swap


@pytest.fixture
def quote(funded, rates, inventory, now):
    return services.quote_create(
        enterprise=funded(), sell_currency="USD", buy_currency="HKD", sell_amount=Decimal("10.00"), now=now
    )


@pytest.mark.parametrize(
    "change",
    [{"buy_amount": Decimal("100.00")}, {"client_rate": Decimal("7.9")}, {"expires_at": None}, {"fee_amount": 1}],
)
def test_a_quote_is_kept_as_shown(quote, change):
    if "expires_at" in change:
        change = {"expires_at": quote.expires_at.replace(year=2030)}
    with pytest.raises(DatabaseError, match="fx:immutable:fx_quote"), transaction.atomic():
        Quote.objects.filter(pk=quote.pk).update(**change)
    assert Quote.objects.get(pk=quote.pk).buy_amount == quote.buy_amount


def test_writing_the_same_values_is_not_a_change(quote):
    assert Quote.objects.filter(pk=quote.pk).update(buy_amount=quote.buy_amount) == 1


def test_a_quote_goes_only_from_open_to_accepted(quote, now):
    services.quote_accept(enterprise=quote.enterprise, public_id=quote.public_id, now=now)

    with pytest.raises(DatabaseError, match="fx:immutable:fx_quote"), transaction.atomic():
        Quote.objects.filter(pk=quote.pk).update(status="open")
    with pytest.raises(DatabaseError, match="fx:immutable:fx_swap"), transaction.atomic():
        Swap.objects.filter(quote=quote).update(buy_amount=Decimal("1.00"))
    with pytest.raises(DatabaseError, match="fx:immutable:fx_swap"), transaction.atomic():
        Swap.objects.filter(quote=quote).delete()


def test_a_quote_is_not_deleted(quote):
    with pytest.raises(DatabaseError, match="fx:immutable:fx_quote"), transaction.atomic():
        Quote.objects.filter(pk=quote.pk).delete()

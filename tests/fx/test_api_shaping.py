"""config.api.shaping: a body from the serializer bound once is the serializer's own ``.data``, byte for byte."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from config.api.shaping import represent
from fx import selectors, services
from fx.api.serializers import QuoteSerializer, RatesSerializer, SwapSerializer


def _same(serializer_class, instance) -> None:
    expected = serializer_class(instance).data
    for _ in range(2):  # the second call reuses the bound fields
        got = represent(serializer_class, instance)
        assert got == expected
        assert JSONRenderer().render(got) == JSONRenderer().render(expected)


def test_quote_swap_and_rates_bodies_are_the_serializers(funded, rates, inventory, settings):
    settings.FX_RATES_STALE_AFTER_SECONDS = 10**9
    settings.FX_QUOTE_TTL_SECONDS = 10**6
    enterprise = funded()
    quote = services.quote_create(
        enterprise=enterprise, sell_currency="USD", buy_currency="HKD", sell_amount=Decimal("125.00")
    )
    _same(QuoteSerializer, quote)
    _same(SwapSerializer, services.quote_accept(enterprise=enterprise, public_id=quote.public_id))

    current = selectors.rates_current()
    payload = {
        "published_at": current.published_at,
        "stale": current.is_stale(now=timezone.now()),
        "spread_bps": 30,
        "legs": [{"currency": code, "mid": mid, "source": current.sources[code]} for code, mid in current.legs.items()],
        "pairs": selectors.indicative_rates(rates=current, spread_bps=30),
    }
    _same(RatesSerializer, payload)

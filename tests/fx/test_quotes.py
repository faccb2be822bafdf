"""quote_create: firm quotes stored as shown, and every refusal with its code."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from corporates.models import EnterpriseStatus
from corporates.services import EnterpriseNotActive
from fx import services
from fx.models import (
    EnterpriseFxTerms,
    InventoryAlert,
    InventoryAlertKind,
    InventoryFloor,
    PricingTier,
    Quote,
    RateTick,
)


@pytest.fixture(autouse=True)
def _both_sql_paths(sql_path):
    """Every test here runs through the lean SQL path and the ORM path."""


def test_quote_shows_both_exact_amounts_and_is_stored_as_shown(funded, rates, inventory, now):
    enterprise = funded()

    quote = services.quote_create(
        enterprise=enterprise, sell_currency="USD", buy_currency="HKD", sell_amount=Decimal("1000.00"), now=now
    )

    stored = Quote.objects.get(public_id=quote.public_id)
    assert stored.public_id.startswith("fxq_")
    assert stored.mid_rate == Decimal("7.8123000000")
    assert stored.spread_bps == 30
    # 7.8123 × (1 − 0.0030) = 7.7888631, rounded down to 10 places (exact here)
    assert stored.client_rate == Decimal("7.7888631000")
    assert stored.sell_amount == Decimal("1000.00")
    assert stored.buy_amount == Decimal("7788.86")  # 7788.8631 rounded down: the client receives
    assert stored.fee_amount == Decimal("0.00")
    assert stored.usd_value == Decimal("1000.00")
    assert stored.created_at == now
    assert stored.expires_at == now + timedelta(seconds=30)
    assert stored.status == "open"
    assert stored.rate_sources == "CNH:manual,HKD:manual"


def test_fixed_buy_rounds_what_the_client_pays_up(funded, rates, inventory, now):
    enterprise = funded()

    quote = services.quote_create(
        enterprise=enterprise, sell_currency="HKD", buy_currency="USD", buy_amount=Decimal("100.00"), now=now
    )

    # HKD→USD mid 1/7.8123; client rate rounded down; 100 ÷ rate rounded up.
    assert quote.buy_amount == Decimal("100.00")
    assert quote.client_rate == Decimal("0.1276192670")  # 0.12761926705… rounded down
    assert quote.sell_amount == Decimal("783.59")  # 783.58074… rounded up: the client pays


def test_the_enterprises_pricing_tier_sets_the_spread(funded, rates, inventory, now):
    enterprise = funded()
    EnterpriseFxTerms.objects.create(enterprise=enterprise, tier=PricingTier.objects.create(name="Gold", spread_bps=5))

    quote = services.quote_create(
        enterprise=enterprise, sell_currency="USD", buy_currency="CNH", sell_amount=Decimal("10.00"), now=now
    )

    assert quote.spread_bps == 5
    assert quote.client_rate == Decimal("7.1006479000")  # 7.1042 × 0.9995
    assert quote.buy_amount == Decimal("71.00")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sell_currency": "USD", "buy_currency": "USD", "sell_amount": Decimal("1.00")}, services.FxPairInvalid),
        ({"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": Decimal("1.00")}, services.FxPairInvalid),
        ({"sell_currency": "USD", "buy_currency": "HKD"}, services.QuoteAmountInvalid),
        (
            {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": Decimal(1), "buy_amount": Decimal(1)},
            services.QuoteAmountInvalid,
        ),
        ({"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": Decimal("0.001")}, services.QuoteAmountInvalid),
        ({"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": Decimal("-1.00")}, services.QuoteAmountInvalid),
        # 0.01 HKD buys 0.00127… USD: rounds to nothing
        ({"sell_currency": "HKD", "buy_currency": "USD", "sell_amount": Decimal("0.01")}, services.QuoteAmountTooSmall),
    ],
)
def test_malformed_quotes_are_refused(funded, rates, inventory, now, kwargs, error):
    with pytest.raises(error):
        services.quote_create(enterprise=funded(), now=now, **kwargs)
    assert not Quote.objects.exists()


def test_a_rate_older_than_the_staleness_limit_is_not_quotable(funded, rates, inventory, now, settings):
    settings.FX_RATES_STALE_AFTER_SECONDS = 60
    enterprise = funded()
    fresh = now + timedelta(seconds=60)
    stale = now + timedelta(seconds=60, microseconds=1)

    assert services.quote_create(
        enterprise=enterprise, sell_currency="USD", buy_currency="HKD", sell_amount=Decimal("1.00"), now=fresh
    )
    with pytest.raises(services.RatesStale) as caught:
        services.quote_create(
            enterprise=enterprise, sell_currency="USD", buy_currency="HKD", sell_amount=Decimal("1.00"), now=stale
        )
    assert caught.value.code == "rates_stale"


def test_no_rates_at_all_is_stale(funded, rate_sources, inventory, now):
    with pytest.raises(services.RatesStale):
        services.quote_create(
            enterprise=funded(), sell_currency="USD", buy_currency="HKD", sell_amount=Decimal("1.00"), now=now
        )


def test_staleness_is_judged_on_the_older_leg(funded, rates, rate_sources, inventory, now, settings):
    settings.FX_RATES_STALE_AFTER_SECONDS = 60
    # A source that refreshed HKD only.
    RateTick.objects.create(
        source=rate_sources["simulated"], currency="HKD", mid=Decimal("7.8"), published_at=now + timedelta(seconds=50)
    )

    with pytest.raises(services.RatesStale):
        services.quote_create(
            enterprise=funded(),
            sell_currency="USD",
            buy_currency="HKD",
            sell_amount=Decimal("1.00"),
            now=now + timedelta(seconds=61),
        )


@pytest.mark.parametrize("status", [EnterpriseStatus.FROZEN, EnterpriseStatus.UNDER_REVIEW])
def test_an_enterprise_that_is_not_active_gets_no_quote(funded, rates, inventory, now, status):
    enterprise = funded()
    enterprise.status = status
    enterprise.save()

    with pytest.raises(EnterpriseNotActive):
        services.quote_create(
            enterprise=enterprise, sell_currency="USD", buy_currency="HKD", sell_amount=Decimal("1.00"), now=now
        )


def test_single_swap_limit_is_valued_in_usd(funded, rates, inventory, now):
    enterprise = funded()
    EnterpriseFxTerms.objects.create(
        enterprise=enterprise,
        tier=PricingTier.objects.create(name="Std", spread_bps=30),
        single_swap_limit_usd=Decimal("1000.00"),
    )
    # 7812.30 HKD is exactly 1000.00 USD at the mid: allowed; one cent more is not.
    assert services.quote_create(
        enterprise=enterprise, sell_currency="HKD", buy_currency="CNH", sell_amount=Decimal("7812.30"), now=now
    )
    with pytest.raises(services.SwapLimitExceeded):
        services.quote_create(
            enterprise=enterprise, sell_currency="HKD", buy_currency="CNH", sell_amount=Decimal("7812.31"), now=now
        )


def test_a_quote_that_would_breach_the_inventory_floor_is_refused_and_alerts(funded, rates, inventory, now):
    InventoryFloor.objects.update_or_create(
        currency="USD", defaults={"floor": Decimal("6499000.00")}
    )  # leaves 1,000.00 of room
    enterprise = funded()

    ok = services.quote_create(
        enterprise=enterprise, sell_currency="HKD", buy_currency="USD", buy_amount=Decimal("1000.00"), now=now
    )
    for _ in range(2):
        with pytest.raises(services.InventoryFloorBreached):
            services.quote_create(
                enterprise=enterprise, sell_currency="HKD", buy_currency="USD", buy_amount=Decimal("1000.01"), now=now
            )

    assert ok.buy_amount == Decimal("1000.00")
    alert = InventoryAlert.objects.get()  # one open alert, counted up
    assert (alert.currency, alert.kind, alert.occurrences) == ("USD", InventoryAlertKind.QUOTE_REFUSED, 2)
    assert alert.floor == Decimal("6499000.00")


def test_a_quote_the_inventory_cannot_pay_is_refused(funded, rates, platform, now):
    # No inventory funded at all.
    with pytest.raises(services.InventoryInsufficient):
        services.quote_create(
            enterprise=funded(), sell_currency="USD", buy_currency="HKD", sell_amount=Decimal("1.00"), now=now
        )


CYCLES = [("USD", "HKD"), ("HKD", "CNH"), ("CNH", "USD"), ("USD", "HKD", "CNH"), ("USD", "CNH", "HKD")]


@pytest.mark.parametrize("cycle", CYCLES)
@pytest.mark.parametrize("start", ["0.01", "1.00", "999.99", "123456.78"])
def test_no_round_trip_profit_through_quotes_issued_at_one_moment(
    funded, rates, inventory, now, settings, cycle, start
):
    """Crosses come from the same USD legs: chaining quotes A→B(→C)→A never returns more than A."""
    settings.FX_DEFAULT_SPREAD_BPS = 0  # the hardest case: no spread to hide behind
    enterprise = funded()
    held = Decimal(start)
    path = [*cycle, cycle[0]]
    for sell, buy in zip(path, path[1:], strict=False):
        try:
            quote = services.quote_create(
                enterprise=enterprise, sell_currency=sell, buy_currency=buy, sell_amount=held, now=now
            )
        except services.QuoteAmountTooSmall:
            return  # rounded to nothing on the way: certainly no profit
        held = quote.buy_amount
    assert held <= Decimal(start)

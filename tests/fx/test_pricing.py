"""fx.pricing on its own: rounding in both directions for all six pairs, and no round-trip profit.

Pure functions, so hypothesis can try thousands of legs, spreads and amounts.
The same properties are checked through the database and the ledger in
test_swaps.py.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config import money
from fx import pricing

PAIRS = pricing.pairs()

# USD legs around the real ranges, with 4–10 places.
hkd_legs = st.decimals(min_value=Decimal("7.75"), max_value=Decimal("7.85"), places=10)
cnh_legs = st.decimals(min_value=Decimal("6.5"), max_value=Decimal("7.5"), places=10)
spreads = st.integers(min_value=0, max_value=500)
amounts = st.integers(min_value=1, max_value=10**13).map(lambda minor: money.from_minor(minor, "USD"))


def test_six_pairs():
    assert sorted(PAIRS) == sorted(
        [("HKD", "USD"), ("HKD", "CNH"), ("USD", "HKD"), ("USD", "CNH"), ("CNH", "HKD"), ("CNH", "USD")]
    )


@pytest.mark.parametrize(("sell", "buy"), PAIRS)
@settings(max_examples=300, deadline=None)
@given(hkd=hkd_legs, cnh=cnh_legs, spread=spreads, amount=amounts)
def test_fixed_sell_rounds_what_the_client_receives_down(sell, buy, hkd, cnh, spread, amount):
    legs = {"HKD": hkd, "CNH": cnh}
    rate = pricing.client_rate(legs, sell=sell, buy=buy, spread_bps=spread)

    priced = pricing.amounts_for(rate=rate, sell_currency=sell, buy_currency=buy, fixed_side="sell", amount=amount)

    exact_buy = Fraction(amount) * Fraction(rate)
    assert priced.sell_amount == amount
    assert Fraction(priced.buy_amount) <= exact_buy < Fraction(priced.buy_amount) + Fraction(1, 100)
    assert rate <= pricing.display_mid(legs, sell=sell, buy=buy) + Decimal("1e-10")
    assert Fraction(rate) <= pricing.exact_mid(legs, sell=sell, buy=buy)


@pytest.mark.parametrize(("sell", "buy"), PAIRS)
@settings(max_examples=300, deadline=None)
@given(hkd=hkd_legs, cnh=cnh_legs, spread=spreads, amount=amounts)
def test_fixed_buy_rounds_what_the_client_pays_up(sell, buy, hkd, cnh, spread, amount):
    legs = {"HKD": hkd, "CNH": cnh}
    rate = pricing.client_rate(legs, sell=sell, buy=buy, spread_bps=spread)

    priced = pricing.amounts_for(rate=rate, sell_currency=sell, buy_currency=buy, fixed_side="buy", amount=amount)

    exact_sell = Fraction(amount) / Fraction(rate)
    assert priced.buy_amount == amount
    assert Fraction(priced.sell_amount) - Fraction(1, 100) < exact_sell <= Fraction(priced.sell_amount)
    # The platform never pays out more than the sell amount is worth at the client rate.
    assert Fraction(priced.buy_amount) <= Fraction(priced.sell_amount) * Fraction(rate)


def _swap(legs, spread, sell, buy, amount, fixed_side):
    rate = pricing.client_rate(legs, sell=sell, buy=buy, spread_bps=spread)
    if fixed_side == "sell":
        return pricing.amounts_for(rate=rate, sell_currency=sell, buy_currency=buy, fixed_side="sell", amount=amount)
    # Fixed buy: ask for what the sell amount would buy, the other way round.
    target = pricing.amounts_for(rate=rate, sell_currency=sell, buy_currency=buy, fixed_side="sell", amount=amount)
    return pricing.amounts_for(
        rate=rate, sell_currency=sell, buy_currency=buy, fixed_side="buy", amount=target.buy_amount
    )


@settings(max_examples=500, deadline=None)
@given(
    hkd=hkd_legs,
    cnh=cnh_legs,
    spread=spreads,
    amount=amounts,
    cycle=st.sampled_from(
        [("USD", "HKD"), ("HKD", "CNH"), ("CNH", "USD"), ("USD", "HKD", "CNH"), ("USD", "CNH", "HKD")]
    ),
    sides=st.lists(st.sampled_from(["sell", "buy"]), min_size=3, max_size=3),
    start=st.integers(min_value=0, max_value=2),
)
def test_no_round_trip_profit_from_quotes_issued_at_one_moment(hkd, cnh, spread, amount, cycle, sides, start):
    """Any cycle of swaps (A→B→A or A→B→C→A), each quoted from the same legs, ends with at most the start."""
    legs = {"HKD": hkd, "CNH": cnh}
    cycle = cycle[start % len(cycle) :] + cycle[: start % len(cycle)]
    held, currency = amount, cycle[0]
    path = [*cycle[1:], cycle[0]]
    for step, nxt in enumerate(path):
        if held <= 0:
            break
        priced = _swap(legs, spread, currency, nxt, held, sides[step])
        # Fixed buy can ask for slightly less than held; never more.
        assert priced.sell_amount <= held
        held, currency = priced.buy_amount, nxt
    assert currency == cycle[0] or held <= 0
    if currency == cycle[0]:
        assert held <= amount


@pytest.mark.parametrize(("sell", "buy"), PAIRS)
def test_mids_of_a_pair_and_its_reverse_multiply_to_one(sell, buy):
    legs = {"HKD": Decimal("7.8123"), "CNH": Decimal("7.1042")}
    assert pricing.exact_mid(legs, sell=sell, buy=buy) * pricing.exact_mid(legs, sell=buy, buy=sell) == 1
    # and the client rates of both ways multiply to less than one
    there = pricing.client_rate(legs, sell=sell, buy=buy, spread_bps=0)
    back = pricing.client_rate(legs, sell=buy, buy=sell, spread_bps=0)
    assert there * back <= 1


def test_cross_rate_is_derived_from_the_usd_legs():
    legs = {"HKD": Decimal("7.8"), "CNH": Decimal("7.1")}
    assert pricing.exact_mid(legs, sell="HKD", buy="CNH") == Fraction(71, 78)
    assert pricing.display_mid(legs, sell="HKD", buy="CNH") == Decimal("0.9102564103")
    assert pricing.client_rate(legs, sell="HKD", buy="CNH", spread_bps=0) == Decimal("0.9102564102")
    assert pricing.client_rate(legs, sell="USD", buy="HKD", spread_bps=25) == Decimal("7.7805000000")

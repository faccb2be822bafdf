"""Through the database and the ledger, for each of the six pairs, both fixed sides (hypothesis).

The platform never pays out more than the quote's exact amounts, the ledger
moves exactly those amounts, and rounding neither creates nor destroys value:
per currency the token supply is unchanged and ledger_verify() holds.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import money
from fx import pricing, services
from settlement.ledger.models import AccountKind
from settlement.ledger.selectors import balances_for, ledger_verify, platform_account

PAIRS = pricing.pairs()


def _supply(currency):
    report = ledger_verify()
    return report.currencies[currency].supply


@pytest.mark.parametrize(("sell", "buy"), PAIRS)
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    minor=st.one_of(st.integers(min_value=1, max_value=999), st.integers(min_value=1000, max_value=5_000_000)),
    fixed_side=st.sampled_from(["sell", "buy"]),
    spread=st.integers(min_value=0, max_value=200),
    seconds=st.integers(min_value=0, max_value=29),
)
def test_swap_moves_exactly_the_quoted_amounts_and_conserves_value(
    funded, rates, inventory, now, sell, buy, minor, fixed_side, spread, seconds, settings
):
    settings.FX_DEFAULT_SPREAD_BPS = spread
    enterprise = funded()
    amount = money.from_minor(minor, sell if fixed_side == "sell" else buy)
    try:
        quote = services.quote_create(
            enterprise=enterprise, sell_currency=sell, buy_currency=buy, now=now, **{f"{fixed_side}_amount": amount}
        )
    except services.QuoteAmountTooSmall:
        return  # the other side rounds to nothing: refused, nothing to conserve
    supply_before = {code: _supply(code) for code in (sell, buy)}
    wallets_before = balances_for(enterprise=enterprise)
    inventory_before = {
        code: platform_account(kind=AccountKind.FX_INVENTORY, currency=code).balance for code in (sell, buy)
    }

    services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now + timedelta(seconds=seconds))

    # The quote honours the rounding rule: paid rounded up, received rounded down.
    assert Fraction(quote.buy_amount) <= Fraction(quote.sell_amount) * Fraction(quote.client_rate)
    assert quote.client_rate <= quote.mid_rate
    sell_minor, buy_minor = money.to_minor(quote.sell_amount, sell), money.to_minor(quote.buy_amount, buy)
    wallets = balances_for(enterprise=enterprise)
    assert wallets[sell] == wallets_before[sell] - sell_minor
    assert wallets[buy] == wallets_before[buy] + buy_minor  # never more than the quote showed
    assert platform_account(kind=AccountKind.FX_INVENTORY, currency=buy).balance == inventory_before[buy] - buy_minor
    assert platform_account(kind=AccountKind.FX_INVENTORY, currency=sell).balance == inventory_before[sell] + sell_minor
    assert {code: _supply(code) for code in (sell, buy)} == supply_before
    assert ledger_verify().ok
    if fixed_side == "sell":
        assert quote.sell_amount == amount
    else:
        assert quote.buy_amount == amount
    assert quote.fee_amount == Decimal("0.00")

"""quote_accept: one four-leg journal entry, or a specific refusal that writes nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from config import money
from corporates.models import EnterpriseStatus
from corporates.services import EnterpriseNotActive
from fx import services
from fx.models import EnterpriseFxTerms, InventoryAlert, InventoryFloor, PricingTier, Quote, Swap
from settlement.ledger.models import AccountKind, EntryKind, JournalEntry, Posting
from settlement.ledger.selectors import balances_for, ledger_verify, platform_account, wallet_for
from settlement.ledger.services import AccountFrozen, account_freeze, ledger_post, legs_debit_credit


@pytest.fixture(autouse=True)
def _both_sql_paths(sql_path):
    """Every test here runs through the lean SQL path and the ORM path."""


def _quote(enterprise, now, sell="USD", buy="HKD", **amount):
    amount = amount or {"sell_amount": Decimal("1000.00")}
    return services.quote_create(enterprise=enterprise, sell_currency=sell, buy_currency=buy, now=now, **amount)


def _inventory_minor(currency):
    return platform_account(kind=AccountKind.FX_INVENTORY, currency=currency).balance


def _nothing_written(quote):
    quote.refresh_from_db()
    assert quote.status == "open"
    assert not Swap.objects.exists()
    assert not JournalEntry.objects.filter(kind=EntryKind.FX_SWAP).exists()


def test_accept_posts_one_entry_with_four_legs_for_the_exact_amounts(funded, rates, inventory, now, ledger_path):
    enterprise = funded()
    quote = _quote(enterprise, now, sell="CNH", buy="HKD", sell_amount=Decimal("12345.67"))
    before = balances_for(enterprise=enterprise)
    inventory_before = {code: _inventory_minor(code) for code in ("CNH", "HKD")}

    swap = services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now + timedelta(seconds=29))

    sell_minor, buy_minor = money.to_minor(quote.sell_amount, "CNH"), money.to_minor(quote.buy_amount, "HKD")
    after = balances_for(enterprise=enterprise)
    assert after["CNH"] == before["CNH"] - sell_minor
    assert after["HKD"] == before["HKD"] + buy_minor
    assert _inventory_minor("CNH") == inventory_before["CNH"] + sell_minor
    assert _inventory_minor("HKD") == inventory_before["HKD"] - buy_minor
    entry = swap.journal_entry
    assert entry.kind == EntryKind.FX_SWAP
    assert entry.idempotency_key == f"fx-swap:{quote.public_id}"
    postings = {(p.account_id, p.currency, p.amount) for p in Posting.objects.filter(entry=entry)}
    assert postings == {
        (wallet_for(enterprise=enterprise, currency="CNH").id, "CNH", sell_minor),
        (inventory["CNH"].id, "CNH", -sell_minor),
        (inventory["HKD"].id, "HKD", buy_minor),
        (wallet_for(enterprise=enterprise, currency="HKD").id, "HKD", -buy_minor),
    }
    quote.refresh_from_db()
    assert quote.status == "accepted"
    assert (swap.sell_amount, swap.buy_amount, swap.accepted_at) == (
        quote.sell_amount,
        quote.buy_amount,
        now + timedelta(seconds=29),
    )
    assert swap.public_id.startswith("fxs_")
    assert ledger_verify().ok


def test_expiry_boundary_with_an_injected_clock(funded, rates, inventory, now):
    enterprise = funded()
    late, in_time = _quote(enterprise, now), _quote(enterprise, now)
    assert late.expires_at == now + timedelta(seconds=30)

    with pytest.raises(services.QuoteExpired) as caught:
        services.quote_accept(enterprise=enterprise, public_id=late.public_id, now=late.expires_at)
    assert caught.value.code == "quote_expired"
    _nothing_written(late)

    swap = services.quote_accept(
        enterprise=enterprise, public_id=in_time.public_id, now=in_time.expires_at - timedelta(microseconds=1)
    )
    assert swap.quote_id == in_time.id


def test_a_quote_is_accepted_once(funded, rates, inventory, now):
    enterprise = funded()
    quote = _quote(enterprise, now)
    services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now)
    balances = balances_for(enterprise=enterprise)

    with pytest.raises(services.QuoteAlreadyAccepted):
        services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now)

    assert Swap.objects.count() == 1
    assert balances_for(enterprise=enterprise) == balances


def test_another_tenants_quote_is_not_found(funded, rates, inventory, now):
    owner, other = funded(), funded()
    quote = _quote(owner, now)

    with pytest.raises(services.QuoteNotFound) as caught:
        services.quote_accept(enterprise=other, public_id=quote.public_id, now=now)
    assert caught.value.http_status == 404
    _nothing_written(quote)


def test_unknown_quote_is_not_found(funded, rates, inventory, now):
    with pytest.raises(services.QuoteNotFound):
        services.quote_accept(enterprise=funded(), public_id="fxq_nope", now=now)


def test_wallet_lacking_funds(funded, rates, inventory, now, ledger_path):
    enterprise = funded(USD="999.99")
    quote = _quote(enterprise, now)  # sells 1000.00 USD

    with pytest.raises(services.WalletInsufficientFunds) as caught:
        services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now)
    assert caught.value.code == "insufficient_funds"
    _nothing_written(quote)


def test_platform_inventory_lacking_funds(funded, rates, inventory, now, mint):
    enterprise = funded()
    quote = _quote(enterprise, now)  # pays out 7788.86 HKD
    # Drain the HKD inventory to 7788.85 after the quote was issued.
    drain_to = money.to_minor(Decimal("7788.85"), "HKD")
    ledger_post(
        idempotency_key="drain",
        kind=EntryKind.TRANSFER,
        legs=legs_debit_credit(
            debit=inventory["HKD"],
            credit=wallet_for(enterprise=funded(), currency="HKD"),
            minor=_inventory_minor("HKD") - drain_to,
        ),
    )

    with pytest.raises(services.InventoryInsufficient) as caught:
        services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now)
    assert caught.value.code == "fx_inventory_insufficient"
    _nothing_written(quote)
    assert InventoryAlert.objects.filter(currency="HKD").exists()


def test_accept_that_would_breach_the_floor_is_refused_with_an_alert(funded, rates, inventory, now):
    enterprise = funded()
    quote = _quote(enterprise, now)  # pays out 7788.86 HKD
    InventoryFloor.objects.update_or_create(
        currency="HKD", defaults={"floor": Decimal("50000000.00") - Decimal("7788.85")}
    )

    with pytest.raises(services.InventoryFloorBreached):
        services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now)

    _nothing_written(quote)
    alert = InventoryAlert.objects.get(currency="HKD")
    assert quote.public_id in alert.detail


def test_accept_exactly_down_to_the_floor_is_allowed(funded, rates, inventory, now):
    enterprise = funded()
    quote = _quote(enterprise, now)
    InventoryFloor.objects.update_or_create(
        currency="HKD", defaults={"floor": Decimal("50000000.00") - Decimal("7788.86")}
    )

    services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now)

    assert _inventory_minor("HKD") == money.to_minor(Decimal("50000000.00") - Decimal("7788.86"), "HKD")


def test_frozen_enterprise_cannot_accept(funded, rates, inventory, now):
    enterprise = funded()
    quote = _quote(enterprise, now)
    enterprise.status = EnterpriseStatus.FROZEN
    enterprise.save()

    with pytest.raises(EnterpriseNotActive):
        services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now)
    _nothing_written(quote)


def test_frozen_wallet_cannot_pay(funded, rates, inventory, now):
    enterprise = funded()
    quote = _quote(enterprise, now)
    account_freeze(account=wallet_for(enterprise=enterprise, currency="USD"))

    with pytest.raises(AccountFrozen):
        services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now)
    _nothing_written(quote)


def test_limit_lowered_after_quoting_refuses_the_accept(funded, rates, inventory, now):
    enterprise = funded()
    quote = _quote(enterprise, now)  # worth 1000.00 USD
    EnterpriseFxTerms.objects.create(
        enterprise=enterprise,
        tier=PricingTier.objects.create(name="Std", spread_bps=30),
        single_swap_limit_usd=Decimal("999.99"),
    )

    with pytest.raises(services.SwapLimitExceeded):
        services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now)
    _nothing_written(quote)


def test_the_quote_as_shown_is_what_executes_even_if_rates_move(funded, publish, inventory, now):
    publish(at=now)
    enterprise = funded()
    quote = _quote(enterprise, now)
    publish(at=now + timedelta(seconds=5), legs={"HKD": Decimal("7.7600"), "CNH": Decimal("7.2")})

    swap = services.quote_accept(enterprise=enterprise, public_id=quote.public_id, now=now + timedelta(seconds=6))

    assert swap.buy_amount == Decimal("7788.86")
    assert Quote.objects.get(pk=quote.pk).client_rate == Decimal("7.7888631000")


def test_the_floor_check_alerts_once_per_open_alert(inventory, now):
    InventoryFloor.objects.update_or_create(
        currency="USD", defaults={"floor": Decimal("7000000.00")}
    )  # above the 6.5M held
    InventoryFloor.objects.update_or_create(currency="HKD", defaults={"floor": Decimal("1.00")})

    services.inventory_floors_check(now=now)
    services.inventory_floors_check(now=now)

    alert = InventoryAlert.objects.get()
    assert (alert.currency, alert.kind, alert.occurrences) == ("USD", "below_floor", 2)
    services.inventory_alert_acknowledge(alert=alert, now=now)
    services.inventory_floors_check(now=now)
    assert InventoryAlert.objects.filter(acknowledged_at__isnull=True).count() == 1
    assert InventoryAlert.objects.count() == 2

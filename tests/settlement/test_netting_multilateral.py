"""Multilateral settlement through the clearing account (NETTING_MULTILATERAL_CURRENCIES), on PostgreSQL.

Net debtors pay their whole position into the platform's clearing account of
the currency, then net creditors are paid out of it; a participant that
cannot settle is removed with its obligations and the rest recomputed. The
clearing account is zero when the batch ends, and a batch resumed between
pay-in and pay-out posts nothing twice.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from config import money
from config.db import run_in_transaction
from settlement.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from settlement.ledger.selectors import balances_for, ledger_verify, platform_account, wallet_for
from settlement.netting import services
from settlement.netting.models import BatchStatus, MultilateralStatus, NettingPosition
from settlement.netting.services import batch_open, batch_run
from settlement.obligations.models import Obligation, ObligationStatus
from tests.settlement.test_netting import (
    batch_conserves_every_position,
    fundings,
    minor,
    obligation_sets,
    owe,
    run_batch,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def multilateral_hkd(settings):
    settings.NETTING_MULTILATERAL_CURRENCIES = ["HKD"]


def clearing(currency: str = "HKD") -> Account:
    return platform_account(kind=AccountKind.CLEARING, currency=currency)


def netting_entries() -> list[JournalEntry]:
    return list(JournalEntry.objects.filter(kind=EntryKind.NETTING).order_by("id"))


def moves(entry: JournalEntry) -> tuple[int, int, int]:
    """(debited account, credited account, amount) of a two-leg entry."""
    postings = list(Posting.objects.filter(entry=entry))
    assert len(postings) == 2
    debit = next(p for p in postings if p.amount > 0)
    credit = next(p for p in postings if p.amount < 0)
    return debit.account_id, credit.account_id, debit.amount


def position(batch, enterprise, currency: str = "HKD") -> NettingPosition:
    return NettingPosition.objects.get(batch=batch, enterprise=enterprise, currency=currency)


def test_a_three_party_cycle_settles_only_positions_through_clearing(make_enterprise, mint, multilateral_hkd):
    # a owes b 100, b owes c 60, c owes a 30: positions a -70, b +40, c +30.
    # Bilaterally a would need 100; multilaterally its 70 is enough.
    a, b, c = make_enterprise(), make_enterprise(), make_enterprise()
    mint(a, "70.00", "HKD")
    obligations = [owe(a, b, "100.00"), owe(b, c, "60.00"), owe(c, a, "30.00")]

    batch = run_batch()

    assert batch.status == BatchStatus.COMPLETED
    hkd = clearing().id
    wallets = {e: wallet_for(enterprise=e, currency="HKD").id for e in (a, b, c)}
    assert sorted(moves(e) for e in netting_entries()) == sorted(
        [(wallets[a], hkd, minor("70.00")), (hkd, wallets[b], minor("40.00")), (hkd, wallets[c], minor("30.00"))]
    )
    assert [balances_for(enterprise=e)["HKD"] for e in (a, b, c)] == [0, minor("40.00"), minor("30.00")]
    assert clearing().balance == 0
    assert {o.status for o in Obligation.objects.filter(pk__in=[o.pk for o in obligations])} == {
        ObligationStatus.SETTLED
    }
    assert [position(batch, e).multilateral_settled for e in (a, b, c)] == [
        -minor("70.00"),
        minor("40.00"),
        minor("30.00"),
    ]
    # What the portal, the API and batch.completed show as paid and received net.
    assert [(position(batch, e).net_paid, position(batch, e).net_received) for e in (a, b, c)] == [
        (minor("70.00"), 0),
        (0, minor("40.00")),
        (0, minor("30.00")),
    ]
    assert position(batch, a).saved == minor("30.00")
    figures = batch.report["currencies"]["HKD"]
    assert figures["settlement"] == "multilateral"
    assert (figures["net_transfers"], figures["net_value"]) == (3, minor("70.00"))
    assert (figures["participants_settled"], figures["participants_removed"]) == (3, 0)
    assert figures["gross_value"] == minor("190.00")
    assert ledger_verify().ok


def test_a_balanced_cycle_moves_no_money(make_enterprise, multilateral_hkd):
    a, b, c = make_enterprise(), make_enterprise(), make_enterprise()
    owe(a, b, "50.00"), owe(b, c, "50.00"), owe(c, a, "50.00")

    batch = run_batch()

    assert netting_entries() == []
    assert Obligation.objects.filter(batch=batch, status=ObligationStatus.SETTLED).count() == 3
    assert batch.report["currencies"]["HKD"]["net_transfers"] == 0
    assert ledger_verify().ok


def test_a_short_net_debtor_is_removed_and_the_rest_recomputed(make_enterprise, mint, multilateral_hkd):
    # x owes nothing and is owed 150 by b; a owes b 100; c owes b 60 but holds nothing.
    # Round one: b is +10, c is short (-60) and goes with its obligation. Round two:
    # b is now -50, which its 50 covers; a pays 100; x receives 150.
    a, b, c, x = (make_enterprise() for _ in range(4))
    mint(a, "100.00", "HKD")
    mint(b, "50.00", "HKD")
    a_b, c_b, b_x = owe(a, b, "100.00"), owe(c, b, "60.00"), owe(b, x, "150.00")

    batch = run_batch()

    c_b.refresh_from_db()
    assert c_b.status == ObligationStatus.PENDING
    assert c_b.reason.startswith(f"insufficient_funds: net debtor {c.public_id}")
    assert "multilateral" in c_b.reason
    assert Obligation.objects.get(pk=a_b.pk).status == ObligationStatus.SETTLED
    assert Obligation.objects.get(pk=b_x.pk).status == ObligationStatus.SETTLED
    assert [balances_for(enterprise=e)["HKD"] for e in (a, b, c, x)] == [0, 0, 0, minor("150.00")]
    assert position(batch, c).multilateral_status == MultilateralStatus.REMOVED
    assert position(batch, c).multilateral_settled is None
    assert (position(batch, c).net_paid, position(batch, c).net_received) == (0, 0)
    assert position(batch, b).multilateral_settled == -minor("50.00")  # recomputed without c
    assert position(batch, b).owed - position(batch, b).owes == minor("10.00")  # the full batch's figure
    figures = batch.report["currencies"]["HKD"]
    assert (figures["participants_settled"], figures["participants_removed"]) == (3, 1)
    assert batch.report["obligations"]["rolled"] == 1
    assert clearing().balance == 0
    assert ledger_verify().ok


def test_a_frozen_or_inactive_participant_is_removed(make_enterprise, mint, multilateral_hkd):
    a, b, c = make_enterprise(), make_enterprise(), make_enterprise()
    mint(a, "10.00", "HKD")
    Account.objects.filter(pk=wallet_for(enterprise=a, currency="HKD").pk).update(is_frozen=True)
    mint(c, "5.00", "HKD")
    frozen, fine = owe(a, b, "10.00"), owe(c, b, "5.00")

    run_batch()

    frozen.refresh_from_db()
    assert frozen.status == ObligationStatus.PENDING
    assert frozen.reason.startswith(f"account_frozen: the wallet of net debtor {a.public_id}")
    assert Obligation.objects.get(pk=fine.pk).status == ObligationStatus.SETTLED
    assert balances_for(enterprise=b)["HKD"] == minor("5.00")
    assert ledger_verify().ok


def test_bilateral_currencies_settle_as_before_in_the_same_batch(make_enterprise, mint, multilateral_hkd):
    a, b = make_enterprise(), make_enterprise()
    mint(a, "100.00", "USD")
    mint(a, "100.00", "HKD")
    owe(a, b, "40.00", "USD"), owe(b, a, "15.00", "USD"), owe(a, b, "20.00", "HKD")

    batch = run_batch()

    usd = wallet_for(enterprise=a, currency="USD").id, wallet_for(enterprise=b, currency="USD").id
    entries = [moves(e) for e in netting_entries()]
    assert (usd[0], usd[1], minor("25.00")) in entries  # one pair transfer, wallet to wallet
    assert len(entries) == 3  # and HKD's pay-in and pay-out
    assert batch.report["currencies"]["USD"]["settlement"] == "bilateral"
    assert batch.report["currencies"]["USD"]["net_transfers"] == 1
    assert batch.multilateral_currencies == ["HKD"]
    assert ledger_verify().ok


# The steps a worker has committed when it dies between the pay-in and the pay-out.
UP_TO_PAY_IN = (services._attempt, services._start_netting, services._cut, services._net, services._multilateral_pay_in)


def test_a_batch_resumed_between_pay_in_and_pay_out_settles_nothing_twice(make_enterprise, mint, multilateral_hkd):
    a, b, c = make_enterprise(), make_enterprise(), make_enterprise()
    mint(a, "100.00", "HKD")
    mint(b, "30.00", "HKD")
    owe(a, b, "100.00"), owe(b, c, "80.00")  # a -100, b +20, c +80
    batch = batch_open()
    # The worker got as far as the pay-in, each step committed, then died.
    for step in UP_TO_PAY_IN:
        run_in_transaction(lambda step=step: step(batch.pk))
    assert clearing().balance == minor("100.00")
    assert not ledger_verify().ok  # clearing is not zero outside a running batch...
    assert ledger_verify(clearing_may_be_open=True).ok  # ...and is everything else
    run_in_transaction(lambda: services._multilateral_pay_in(batch.pk))  # a second pay-in posts nothing
    assert len(netting_entries()) == 1

    batch = batch_run(batch_id=batch.pk)  # the retry
    again = batch_run(batch_id=batch.pk)  # and once more, on a completed batch

    assert again.status == BatchStatus.COMPLETED
    assert len(netting_entries()) == 3  # a's pay-in once; b's and c's pay-outs once
    assert [balances_for(enterprise=e)["HKD"] for e in (a, b, c)] == [0, minor("50.00"), minor("80.00")]
    assert Obligation.objects.filter(batch=batch, status=ObligationStatus.SETTLED).count() == 2
    assert clearing().balance == 0
    assert ledger_verify().ok


def test_the_currencies_are_fixed_when_the_batch_nets(make_enterprise, mint, settings, multilateral_hkd):
    a, b = make_enterprise(), make_enterprise()
    mint(a, "10.00", "HKD")
    owe(a, b, "10.00")
    batch = batch_open()
    for step in UP_TO_PAY_IN:
        run_in_transaction(lambda step=step: step(batch.pk))
    settings.NETTING_MULTILATERAL_CURRENCIES = []  # changed while the batch was half done

    batch_run(batch_id=batch.pk)

    assert len(netting_entries()) == 2  # pay-in and pay-out, no pair transfer on top
    assert balances_for(enterprise=b)["HKD"] == minor("10.00")
    assert ledger_verify().ok


# --- conservation, for random obligation sets ---------------------------------------------


@pytest.fixture
def five_enterprises(make_enterprise):
    return [make_enterprise() for _ in range(5)]


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(obligations=obligation_sets, funding=fundings)
def test_multilateral_netting_conserves_every_position(five_enterprises, mint, settings, obligations, funding):
    settings.NETTING_MULTILATERAL_CURRENCIES = list(money.CURRENCY_CODES)
    with transaction.atomic():
        batch = batch_conserves_every_position(five_enterprises, mint, obligations, funding)
        # Every netting entry goes through clearing: no wallet-to-wallet transfer.
        clearing_ids = set(Account.objects.filter(kind=AccountKind.CLEARING).values_list("id", flat=True))
        for entry in JournalEntry.objects.filter(kind=EntryKind.NETTING, memo__contains=batch.public_id):
            debit, credit, _ = moves(entry)
            assert clearing_ids & {debit, credit}
        assert all(account.balance == 0 for account in Account.objects.filter(kind=AccountKind.CLEARING))
        assert ledger_verify().ok
        transaction.set_rollback(True)

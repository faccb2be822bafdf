"""Netting batches on PostgreSQL: the arithmetic, liquidity passes, roll-over and failure, positions, preview."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from config import money
from corporates.onboarding.limits import enterprise_limits_set
from settlement.ledger.models import Account, AccountKind, EntryKind, JournalEntry
from settlement.ledger.selectors import balances_for, ledger_verify
from settlement.netting.models import BatchStatus, NettingPair, NettingPosition, PairStatus
from settlement.netting.services import batch_open, batch_run, netting_preview
from settlement.obligations.models import Obligation, ObligationStatus
from settlement.obligations.services import obligation_approve, obligation_cancel, obligations_create_bulk

pytestmark = pytest.mark.django_db

_refs = itertools.count(1)


def owe(payer, payee, amount: str, currency: str = "HKD", value_date=None) -> Obligation:
    """One obligation through the bulk service (the path the API and the benchmark take)."""
    result = obligations_create_bulk(
        payer=payer,
        rows=[
            {
                "payee": payee.public_id,
                "amount": amount,
                "currency": currency,
                "value_date": (value_date or timezone.localdate()).isoformat(),
                "external_reference": f"INV-{next(_refs)}",
            }
        ],
    )
    return Obligation.objects.get(public_id=result.public_ids[0])


def run_batch():
    return batch_run(batch_id=batch_open().pk)


def minor(amount: str, currency: str = "HKD") -> int:
    return money.to_minor(money.parse_amount(amount, currency), currency)


def netting_entries() -> int:
    return JournalEntry.objects.filter(kind=EntryKind.NETTING).count()


def test_a_pair_settles_its_net_as_one_entry(make_enterprise, mint):
    a, b = make_enterprise(), make_enterprise()
    mint(a, "100.00")
    o1, o2 = owe(a, b, "100.00"), owe(a, b, "20.00")
    o3 = owe(b, a, "30.00")

    batch = run_batch()

    assert batch.status == BatchStatus.COMPLETED
    assert balances_for(enterprise=a)["HKD"] == minor("10.00")
    assert balances_for(enterprise=b)["HKD"] == minor("90.00")
    assert netting_entries() == 1
    for obligation in (o1, o2, o3):
        obligation.refresh_from_db()
        assert obligation.status == ObligationStatus.SETTLED and obligation.batch_id == batch.pk
        assert obligation.settled_at is not None
    figures = batch.report["currencies"]["HKD"]
    assert figures["gross_count"] == 3 and figures["gross_value"] == minor("150.00")
    assert figures["net_transfers"] == 1 and figures["net_value"] == minor("90.00")
    assert figures["efficiency_bilateral_pct"] == "40.00"
    assert set(batch.phase_seconds) >= {"cut", "net", "settle", "complete", "total"}
    assert batch.cut_id == o3.pk and batch.cut_exclusions == []
    assert ledger_verify().ok


def test_a_zero_net_settles_with_no_transfer(make_enterprise):
    a, b = make_enterprise(), make_enterprise()
    owe(a, b, "40.00", "USD")
    owe(b, a, "40.00", "USD")

    batch = run_batch()

    assert netting_entries() == 0
    assert Obligation.objects.filter(status=ObligationStatus.SETTLED).count() == 2
    assert batch.report["currencies"]["USD"]["efficiency_bilateral_pct"] == "100.00"
    assert ledger_verify().ok


def test_liquidity_passes_let_a_payer_use_what_it_receives(make_enterprise, mint):
    a, b, c, d = (make_enterprise() for _ in range(4))
    mint(a, "100.00", "CNH")
    owe(a, b, "100.00", "CNH")  # pass 1: only a can pay
    owe(b, c, "100.00", "CNH")  # pass 2: b pays with what a paid it
    owe(c, d, "60.00", "CNH")  # pass 3

    batch = run_batch()

    assert batch.passes == 3
    assert list(NettingPair.objects.order_by("settled_pass").values_list("settled_pass", flat=True)) == [1, 2, 3]
    assert [balances_for(enterprise=e)["CNH"] for e in (a, b, c, d)] == [0, 0, minor("40.00"), minor("60.00")]
    assert ledger_verify().ok


def test_a_payer_pays_its_smallest_nets_first_up_to_its_balance(make_enterprise, mint):
    a, b, c, d = (make_enterprise() for _ in range(4))
    mint(a, "50.00")
    owe(a, b, "20.00")
    owe(a, c, "25.00")
    big = owe(a, d, "30.00")

    batch = run_batch()

    big.refresh_from_db()
    assert balances_for(enterprise=a)["HKD"] == minor("5.00")
    assert big.status == ObligationStatus.PENDING and big.roll_count == 1
    assert big.reason.startswith("insufficient_funds") and batch.public_id in big.reason
    assert batch.report["obligations"] == {"claimed": 3, "settled": 2, "rolled": 1, "failed": 0}


def test_an_unpaid_pair_rolls_then_settles_when_funded(make_enterprise, mint):
    a, b = make_enterprise(), make_enterprise()
    mint(a, "10.00")
    obligation = owe(a, b, "25.00")

    first = run_batch()
    obligation.refresh_from_db()
    assert obligation.status == ObligationStatus.PENDING and obligation.roll_count == 1
    assert NettingPair.objects.get(batch=first).status == PairStatus.UNPAID
    assert balances_for(enterprise=a)["HKD"] == minor("10.00")

    mint(a, "15.00")
    second = run_batch()
    obligation.refresh_from_db()
    assert obligation.status == ObligationStatus.SETTLED and obligation.batch_id == second.pk
    assert balances_for(enterprise=b)["HKD"] == minor("25.00")
    assert ledger_verify().ok


def test_after_too_many_rolls_the_obligation_fails(make_enterprise, settings):
    settings.NETTING_MAX_ROLLS = 2
    a, b = make_enterprise(), make_enterprise()
    obligation = owe(a, b, "1.00")

    for expected_rolls in (1, 2):
        run_batch()
        obligation.refresh_from_db()
        assert (obligation.status, obligation.roll_count) == (ObligationStatus.PENDING, expected_rolls)
    last = run_batch()

    obligation.refresh_from_db()
    assert obligation.status == ObligationStatus.FAILED and obligation.failed_at is not None
    assert obligation.reason.startswith("insufficient_funds")
    assert last.report["obligations"]["failed"] == 1
    assert run_batch().report["obligations"]["claimed"] == 0


def test_days_past_the_value_date_fail_at_once(make_enterprise, settings):
    settings.NETTING_MAX_DAYS_PAST_VALUE_DATE = 2
    a, b = make_enterprise(), make_enterprise()
    obligation = owe(a, b, "1.00")
    Obligation.objects.filter(pk=obligation.pk).update(value_date=timezone.localdate() - timedelta(days=3))

    run_batch()

    obligation.refresh_from_db()
    assert obligation.status == ObligationStatus.FAILED and obligation.roll_count == 0


def test_a_frozen_payer_rolls_with_the_reason(make_enterprise, mint):
    a, b = make_enterprise(), make_enterprise()
    mint(a, "10.00")
    obligation = owe(a, b, "1.00")
    a.status = "frozen"
    a.save()

    run_batch()

    obligation.refresh_from_db()
    assert obligation.status == ObligationStatus.PENDING
    assert obligation.reason.startswith("enterprise_not_active")
    assert balances_for(enterprise=a)["HKD"] == minor("10.00")


def test_the_cutoff_takes_only_pending_approved_due_obligations(make_enterprise, mint, settings):
    from tests.factories import MembershipFactory

    a, b = make_enterprise(), make_enterprise()
    enterprise_limits_set(
        enterprise=a, currency="HKD", single_payment=None, daily_redemption=None, approval_threshold="50.00"
    )
    mint(a, "500.00")
    due = owe(a, b, "10.00")
    cancelled = owe(a, b, "11.00")
    obligation_cancel(obligation=cancelled, payer=a)
    later = owe(a, b, "12.00", value_date=timezone.localdate() + timedelta(days=1))
    unapproved = owe(a, b, "60.00")

    run_batch()

    statuses = {o.pk: o.status for o in Obligation.objects.all()}
    assert statuses == {
        due.pk: ObligationStatus.SETTLED,
        cancelled.pk: ObligationStatus.CANCELLED,
        later.pk: ObligationStatus.PENDING,
        unapproved.pk: ObligationStatus.PENDING,
    }
    checker = MembershipFactory(enterprise=a, role="checker").user
    obligation_approve(obligation=unapproved, approver=checker)
    run_batch()
    unapproved.refresh_from_db()
    assert unapproved.status == ObligationStatus.SETTLED
    assert balances_for(enterprise=b)["HKD"] == minor("70.00")


def test_multilateral_positions_and_both_efficiencies(make_enterprise, mint):
    a, b, c = (make_enterprise() for _ in range(3))
    for e in (a, b, c):
        mint(e, "100.00", "USD")
    owe(a, b, "100.00", "USD")
    owe(b, c, "100.00", "USD")
    owe(c, a, "100.00", "USD")

    batch = run_batch()

    positions = {p.enterprise_id: p for p in NettingPosition.objects.filter(batch=batch)}
    assert {e: (p.owes, p.owed, p.multilateral_net) for e, p in positions.items()} == {
        e.pk: (minor("100.00"), minor("100.00"), 0) for e in (a, b, c)
    }
    figures = batch.report["currencies"]["USD"]
    assert figures["efficiency_bilateral_pct"] == "0.00"  # three one-way pairs: nothing nets bilaterally
    assert figures["efficiency_multilateral_pct"] == "100.00"  # every participant is flat overall
    assert figures["multilateral_net_value"] == 0 and figures["net_transfers"] == 3


def test_preview_shows_what_the_batch_then_settles(make_enterprise, mint):
    a, b, c = (make_enterprise() for _ in range(3))
    mint(a, "1000.00")
    mint(b, "1000.00", "USD")
    owe(a, b, "70.00")
    owe(b, a, "20.00")
    owe(b, a, "5.00", "USD")
    owe(c, a, "3.00")
    owe(b, c, "9.00")  # not a's

    preview = {
        (row.counterparty_id, row.currency): (row.owes, row.owed, row.net) for row in netting_preview(enterprise=a)
    }

    assert preview == {
        (b.pk, "HKD"): (minor("70.00"), minor("20.00"), -minor("50.00")),
        (b.pk, "USD"): (0, minor("5.00"), minor("5.00")),
        (c.pk, "HKD"): (0, minor("3.00"), minor("3.00")),
    }
    batch = run_batch()
    pairs = {
        (p.party_a_id, p.party_b_id, p.currency): p.net
        for p in NettingPair.objects.filter(batch=batch).filter(party_a=a)
        | NettingPair.objects.filter(batch=batch, party_b=a)
    }
    for (other, currency), (_, _, net) in preview.items():
        key = (min(a.pk, other), max(a.pk, other), currency)
        assert pairs[key] == (-net if a.pk < other else net)


def test_running_a_completed_batch_again_changes_nothing(make_enterprise, mint):
    a, b = make_enterprise(), make_enterprise()
    mint(a, "10.00")
    owe(a, b, "4.00")
    batch = run_batch()
    before = (balances_for(enterprise=a), netting_entries(), batch.report)

    again = batch_run(batch_id=batch.pk)

    assert (balances_for(enterprise=a), netting_entries(), again.report) == before


# --- the conservation laws, for random obligation sets -------------------------------------

amounts = st.integers(min_value=1, max_value=50_000)
obligation_sets = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.sampled_from(money.CURRENCY_CODES), amounts).filter(
        lambda t: t[0] != t[1]
    ),
    min_size=1,
    max_size=25,
)
fundings = st.lists(st.integers(min_value=0, max_value=60_000), min_size=15, max_size=15)


@pytest.fixture
def five_enterprises(make_enterprise):
    return [make_enterprise() for _ in range(5)]


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(obligations=obligation_sets, funding=fundings)
def test_netting_conserves_every_position(five_enterprises, mint, obligations, funding):
    with transaction.atomic():
        batch_conserves_every_position(five_enterprises, mint, obligations, funding)
        assert ledger_verify().ok
        transaction.set_rollback(True)


def batch_conserves_every_position(enterprises, mint, obligations, funding):
    """Fund, owe, run one batch; assert each enterprise's change = owed − owes over the settled
    obligations, and that wallet supply is unchanged. Returns the batch (shared with the
    multilateral test)."""
    for index, (enterprise, currency) in enumerate(itertools.product(enterprises, money.CURRENCY_CODES)):
        if funding[index]:
            mint(enterprise, str(money.from_minor(funding[index], currency)), currency)
    before = {e.pk: balances_for(enterprise=e) for e in enterprises}
    supply_before = _wallet_supply()
    created = [
        owe(enterprises[p], enterprises[q], str(money.from_minor(amount, currency)), currency)
        for p, q, currency, amount in obligations
    ]

    batch = run_batch()

    expected = {e.pk: defaultdict(int) for e in enterprises}
    for obligation in Obligation.objects.filter(pk__in=[o.pk for o in created]):
        assert obligation.status in (ObligationStatus.SETTLED, ObligationStatus.PENDING)
        if obligation.status == ObligationStatus.SETTLED:
            expected[obligation.payee_id][obligation.currency] += obligation.amount
            expected[obligation.payer_id][obligation.currency] -= obligation.amount
    for e in enterprises:
        after = balances_for(enterprise=e)
        assert {c: after[c] - before[e.pk][c] for c in money.CURRENCY_CODES} == {
            c: expected[e.pk][c] for c in money.CURRENCY_CODES
        }
    assert _wallet_supply() == supply_before  # netting moves tokens, never makes or burns them
    assert batch.report["obligations"]["claimed"] == len(created)
    return batch


def _wallet_supply() -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for currency, balance in Account.objects.filter(kind=AccountKind.WALLET).values_list("currency", "balance"):
        totals[currency] += balance
    return dict(totals)


def test_the_batch_tells_every_participant_once(make_enterprise, mint, settings):
    from corporates.models import WebhookEvent
    from settlement.netting.services import batch_events_emit

    settings.NETTING_MAX_ROLLS = 0  # the unpayable obligation fails at once
    a, b, c = (make_enterprise() for _ in range(3))
    mint(a, "100.00")
    settled = owe(a, b, "60.00")
    failed = owe(c, b, "5.00")  # c holds nothing
    batch = run_batch()

    emitted = batch_events_emit(batch_id=batch.pk)
    again = batch_events_emit(batch_id=batch.pk)

    events = {(e.enterprise_id, e.type): e.data for e in WebhookEvent.objects.all()}
    assert again == 0 and emitted == len(events) == 7
    assert events[(a.pk, "obligation.settled")]["obligations"] == [settled.public_id]
    assert events[(b.pk, "obligation.settled")]["obligations"] == [settled.public_id]
    assert events[(b.pk, "obligation.failed")]["id"] == failed.public_id
    assert events[(c.pk, "obligation.failed")]["reason"].startswith("insufficient_funds")
    assert events[(a.pk, "batch.completed")]["positions"][0]["paid_net"] == {"amount": "60.00", "currency": "HKD"}
    assert {(e, t) for e, t in events if t == "batch.completed"} == {(x.pk, "batch.completed") for x in (a, b, c)}


def test_a_cutoff_finishes_what_a_dead_worker_left_and_sends_missed_events(make_enterprise, mint):
    from corporates.models import WebhookEvent
    from settlement.netting.services import batch_cutoff

    a, b = make_enterprise(), make_enterprise()
    mint(a, "10.00")
    owe(a, b, "4.00")
    stranded = batch_open(trigger="died")  # opened, never run

    fresh = batch_cutoff(trigger="every 15 minutes")

    stranded.refresh_from_db()
    assert stranded.status == BatchStatus.COMPLETED and stranded.report["obligations"]["claimed"] == 1
    assert fresh.status == BatchStatus.COMPLETED and fresh.report["obligations"]["claimed"] == 0
    stranded.refresh_from_db()
    assert stranded.events_emitted_at is not None
    assert WebhookEvent.objects.filter(type="batch.completed").count() == 2

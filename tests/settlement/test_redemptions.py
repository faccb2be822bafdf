"""Redeem at par: request, maker-checker, payout at banksim (a real process), the bank's signed answers."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from corporates.api_keys import api_key_create
from corporates.models import ApiScope, BankAccountStatus, MemberRole, WebhookEvent
from corporates.onboarding.banking import BankAccountCurrencyMismatch, BankAccountNotPayable, bank_account_register
from corporates.onboarding.limits import DailyRedemptionLimitExceeded, enterprise_limits_set
from corporates.permissions import CheckerIsMaker, RoleNotPermitted
from corporates.services import EnterpriseNotActive, enterprise_freeze
from settlement.deposits.models import ReserveAlert, ReserveAlertKind
from settlement.ledger.models import AccountKind, EntryKind, JournalEntry
from settlement.ledger.selectors import platform_account
from settlement.redemptions.models import Redemption, RedemptionState
from settlement.redemptions.services import (
    Actor,
    RedemptionBankAccountNotFound,
    RedemptionInsufficientFunds,
    RedemptionNotAwaitingApproval,
    RedemptionNotCancellable,
    hk_working_day_next,
    redemption_approve,
    redemption_cancel,
    redemption_deadline,
    redemption_request,
)
from settlement.reserves import reserves_reconcile
from settlement.tasks import redemption_payout_sweep_task
from settlement.webhooks_in import signature_header_compute
from tests.factories import MembershipFactory
from tests.settlement.mintredeem import *  # noqa: F403
from tests.settlement.mintredeem import assert_books_clean, minor

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HK = ZoneInfo("Asia/Hong_Kong")


def reserve(currency: str = "HKD") -> int:
    return platform_account(kind=AccountKind.RESERVE, currency=currency).balance


def in_transit(currency: str = "HKD") -> int:
    return platform_account(kind=AccountKind.REDEMPTION_IN_TRANSIT, currency=currency).balance


@pytest.fixture
def funded(rails, redeemer):
    """An enterprise holding 10,000.00 HKD minted from a real wire."""
    party = redeemer()
    rails.fund(party.enterprise, "10000.00", "HKD")
    return party


def request(party, amount: str, *, currency: str = "HKD", account=None, actor=None, capture=None):
    return redemption_request(
        enterprise=party.enterprise,
        amount=amount,
        currency=currency,
        bank_account=account or party.account(currency),
        actor=actor or Actor(user=party.maker),
    )


def test_below_the_threshold_a_redemption_is_paid_at_par_with_no_fee(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    wallet_before, reserve_before, custodian_before = funded.wallet(), reserve(), rails.custodian()

    with django_capture_on_commit_callbacks(execute=True):
        redemption = request(funded, "2500.25")

    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.PROCESSING and not redemption.needs_approval
    assert redemption.payout_id and redemption.approved_at and redemption.deadline_at
    assert redemption.requested_at == redemption.approved_at  # approved at once: one time, never before
    assert funded.wallet() == wallet_before - 250025 and in_transit() == 250025
    redemption = rails.settle(redemption)

    assert redemption.state == RedemptionState.PAID and redemption.paid_at
    (payout,) = rails.payouts()
    out_of_wallet = wallet_before - funded.wallet()
    reserve_decrease = reserve_before - reserve()
    assert out_of_wallet == payout.amount_minor == reserve_decrease == redemption.amount == 250025
    assert custodian_before - rails.custodian() == 250025
    assert payout.currency == "HKD" and payout.metadata["redemption"] == redemption.public_id
    assert in_transit() == 0
    kinds = list(JournalEntry.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == [EntryKind.MINT, EntryKind.REDEMPTION, EntryKind.REDEMPTION_PAID]
    assert WebhookEvent.objects.filter(type="redemption.paid", enterprise=funded.enterprise).count() == 1
    assert_books_clean()


def test_above_the_threshold_nothing_moves_until_a_checker_approves(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    enterprise_limits_set(
        enterprise=funded.enterprise,
        currency="HKD",
        single_payment=None,
        daily_redemption=None,
        approval_threshold="1000.00",
    )
    redemption = request(funded, "1000.01")

    assert redemption.state == RedemptionState.AWAITING_APPROVAL and redemption.needs_approval
    assert funded.wallet() == minor("10000.00") and JournalEntry.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        redemption_approve(redemption=redemption, actor=Actor(user=funded.checker))

    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.PROCESSING and redemption.approved_by == funded.checker
    assert funded.wallet() == minor("10000.00") - 100001
    assert rails.settle(redemption).state == RedemptionState.PAID
    with pytest.raises(RedemptionNotAwaitingApproval):
        redemption_approve(redemption=redemption, actor=Actor(user=funded.checker))
    assert_books_clean()


def test_the_checker_is_never_the_maker(rails, funded, redeemer):
    enterprise_limits_set(
        enterprise=funded.enterprise, currency="HKD", single_payment=None, daily_redemption=None, approval_threshold="0"
    )
    redemption = request(funded, "10.00")
    other_maker = MembershipFactory(enterprise=funded.enterprise, role=MemberRole.MAKER).user
    strangers_checker = redeemer().checker

    with pytest.raises(CheckerIsMaker):
        redemption_approve(redemption=redemption, actor=Actor(user=funded.maker))
    with pytest.raises(RoleNotPermitted):
        redemption_approve(redemption=redemption, actor=Actor(user=other_maker))
    with pytest.raises(RoleNotPermitted):
        redemption_approve(redemption=redemption, actor=Actor(user=strangers_checker))

    key = api_key_create(enterprise=funded.enterprise, name="erp", scopes=[ApiScope.REDEMPTIONS], created_by=None)
    by_key = request(funded, "5.00", actor=Actor(api_key=key.api_key))
    with pytest.raises(CheckerIsMaker):
        redemption_approve(redemption=by_key, actor=Actor(api_key=key.api_key))
    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.AWAITING_APPROVAL
    assert funded.wallet() == minor("10000.00")
    assert_books_clean()


def test_a_maker_can_cancel_before_approval_but_not_after(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    enterprise_limits_set(
        enterprise=funded.enterprise, currency="HKD", single_payment=None, daily_redemption=None, approval_threshold="0"
    )
    waiting = request(funded, "10.00")

    cancelled = redemption_cancel(redemption=waiting, actor=Actor(user=funded.maker))

    assert cancelled.state == RedemptionState.CANCELLED and cancelled.cancelled_at
    with pytest.raises(RedemptionNotAwaitingApproval):
        redemption_approve(redemption=waiting, actor=Actor(user=funded.checker))
    approved = request(funded, "20.00")
    with django_capture_on_commit_callbacks(execute=True):
        redemption_approve(redemption=approved, actor=Actor(user=funded.checker))
    with pytest.raises(RedemptionNotCancellable):
        redemption_cancel(redemption=approved, actor=Actor(user=funded.maker))
    rails.settle(approved)
    assert funded.wallet() == minor("9980.00")
    assert_books_clean()


def test_requests_are_refused_when_the_rules_say_no(rails, funded, redeemer):
    with pytest.raises(RedemptionInsufficientFunds):
        request(funded, "10000.01")
    with pytest.raises(BankAccountCurrencyMismatch):
        request(funded, "1.00", account=funded.account("USD"))
    pending = bank_account_register(
        enterprise=funded.enterprise,
        holder_name=funded.enterprise.legal_name,
        bank_name="Bank of Test",
        account_number="555-000111-001",
        currency="HKD",
    )
    assert pending.status == BankAccountStatus.PENDING
    with pytest.raises(BankAccountNotPayable):
        request(funded, "1.00", account=pending)
    with pytest.raises(RedemptionBankAccountNotFound):
        request(funded, "1.00", account=redeemer().account("HKD"))
    with pytest.raises(RoleNotPermitted):
        request(funded, "1.00", actor=Actor(user=funded.checker))
    enterprise_limits_set(
        enterprise=funded.enterprise,
        currency="HKD",
        single_payment=None,
        daily_redemption="100.00",
        approval_threshold="0",
    )
    request(funded, "60.00")  # awaiting approval: counts against the day's limit
    with pytest.raises(DailyRedemptionLimitExceeded):
        request(funded, "40.01")
    request(funded, "40.00")
    enterprise_freeze(enterprise=funded.enterprise, reason="Compliance review")
    funded.enterprise.refresh_from_db()
    with pytest.raises(EnterpriseNotActive):
        request(funded, "1.00")
    assert Redemption.objects.count() == 2 and funded.wallet() == minor("10000.00")
    assert_books_clean()


def test_a_failed_payout_returns_the_tokens_with_the_banks_reason(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    closed = funded.account("HKD", number="000111111113")  # banksim fails payouts to it: account_closed

    with django_capture_on_commit_callbacks(execute=True):
        redemption = request(funded, "300.00", account=closed)
    assert funded.wallet() == minor("9700.00")
    redemption = rails.settle(redemption)

    assert redemption.state == RedemptionState.FAILED and redemption.failed_at
    assert redemption.failure_code == "account_closed" and redemption.failure_message
    assert funded.wallet() == minor("10000.00") and in_transit() == 0 and reserve() == minor("10000.00")
    kinds = list(JournalEntry.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == [EntryKind.MINT, EntryKind.REDEMPTION, EntryKind.REDEMPTION_RETURNED]
    event = WebhookEvent.objects.get(type="redemption.failed")
    assert event.data["failure"]["code"] == "account_closed"
    assert_books_clean()


def test_duplicate_and_out_of_order_webhooks_change_nothing_twice(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    rails.bank.faults(webhook_duplicate_rate=1.0, webhook_shuffle_ms=150)
    closed = funded.account("HKD", number="000111111113")
    with django_capture_on_commit_callbacks(execute=True):
        paid = [request(funded, f"{n}.00") for n in (11, 12, 13)]
        failed = request(funded, "14.00", account=closed)
    outcomes = [rails.payout_outcome(r) for r in [*paid, failed]]
    payout_ids = {r.payout_id for r in Redemption.objects.all()}
    every = rails.receiver.wait_for(
        lambda ds: (
            sum(
                d.event["type"] in ("payout.paid", "payout.failed") and d.event["data"]["object"]["id"] in payout_ids
                for d in ds
            )
            >= 8
        ),  # each terminal event delivered twice
        timeout=30,
    )

    # Every delivery about these payouts, in the (shuffled) order the bank sent them, then all again backwards.
    about = [d for d in every if d.event["data"]["object"].get("id") in payout_ids]
    for delivery in about + about[::-1] + outcomes:
        assert rails.deliver(delivery).status_code == 200

    states = dict(Redemption.objects.values_list("public_id", "state"))
    assert [states[r.public_id] for r in paid] == [RedemptionState.PAID] * 3
    assert states[failed.public_id] == RedemptionState.FAILED
    assert JournalEntry.objects.filter(kind=EntryKind.REDEMPTION_PAID).count() == 3
    assert JournalEntry.objects.filter(kind=EntryKind.REDEMPTION_RETURNED).count() == 1
    assert WebhookEvent.objects.filter(type="redemption.paid").count() == 3
    assert funded.wallet() == minor("10000.00") - minor("36.00")
    assert_books_clean()


def test_the_banks_answer_may_arrive_before_we_recorded_the_payout(rails, funded):
    """A worker that created the payout and died before recording it: the event finds us by metadata."""
    redemption = request(funded, "50.00")  # on-commit not run: the payout task never started
    with rails.bank.client() as client:  # what the dead worker had sent, key and all
        destination = client.external_account_create(
            account_number=redemption.bank_account.account_number,
            currency="HKD",
            account_holder_name=redemption.bank_account.holder_name,
            idempotency_key=f"hl-bank-account-{redemption.bank_account.public_id}",
        )
        payout = client.payout_create(
            amount_minor=redemption.amount,
            currency="HKD",
            destination=destination.id,
            idempotency_key=redemption.payout_idempotency_key,
            metadata={"redemption": redemption.public_id},
        )

    assert rails.deliver(rails.wait_event("payout.paid", payout.id)).status_code == 200

    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.PAID and redemption.payout_id == payout.id
    assert len(rails.payouts()) == 1
    assert_books_clean()


def test_the_deadline_is_the_end_of_the_next_hong_kong_working_day():
    assert hk_working_day_next(date(2026, 11, 20)) == date(2026, 11, 23)  # Friday -> Monday
    assert hk_working_day_next(date(2026, 12, 24)) == date(2026, 12, 28)  # Christmas, Boxing Day, weekend
    assert hk_working_day_next(date(2026, 2, 16)) == date(2026, 2, 20)  # Lunar New Year, three days
    approved = datetime(2026, 11, 24, 23, 30, tzinfo=HK)
    assert redemption_deadline(approved_at=approved) == datetime(2026, 11, 25, 23, 59, 59, tzinfo=HK)
    # 17:00 UTC on a Tuesday is already Wednesday in Hong Kong.
    utc_evening = datetime(2026, 11, 24, 17, 0, tzinfo=ZoneInfo("UTC"))
    assert redemption_deadline(approved_at=utc_evening).date() == date(2026, 11, 26)


def test_a_payout_no_redemption_made_is_acknowledged_and_alerted(rails, funded):
    with rails.bank.client() as client:  # someone paid out of the reserve account outside the platform
        destination = client.external_account_create(
            account_number="999-000000-001", currency="HKD", account_holder_name="Stranger", idempotency_key="x-ba"
        )
        payout = client.payout_create(
            amount_minor=1000, currency="HKD", destination=destination.id, idempotency_key="x-po"
        )

    response = rails.deliver(rails.wait_event("payout.paid", payout.id))

    assert response.status_code == 200 and response.json()["outcome"] == "alerted"
    alert = ReserveAlert.objects.get(kind=ReserveAlertKind.BANK_EVENT)
    assert payout.id in alert.message and alert.details["code"] == "payout_unknown"
    # And reconciliation sees the money that left without a redemption.
    assert reserves_reconcile(confirm_after_s=0).snapshot.currencies["HKD"].difference == -1000


def test_a_cancellation_reported_after_payment_changes_nothing_and_is_alerted(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    """A paid payout cannot be cancelled: the bank contradicts itself. (A paid payout that *fails*
    later is a return, with its own tests in test_redemptions_returned.py.)"""
    with django_capture_on_commit_callbacks(execute=True):
        redemption = request(funded, "20.00")
    paid = rails.payout_outcome(redemption)
    rails.deliver(paid)
    forged_order = json.loads(paid.body)  # the same payout, now "canceled": contradictory
    forged_order["id"] = "evt_late_cancel"
    forged_order["type"] = "payout.canceled"
    forged_order["data"]["object"].update(status="canceled")
    body = json.dumps(forged_order).encode()

    response = rails.deliver(
        paid, body=body, signature=signature_header_compute(payload=body, secret=rails.bank.webhook_secret)
    )

    assert response.status_code == 200 and response.json()["outcome"] == "alerted"
    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.PAID and funded.wallet() == minor("9980.00")
    assert ReserveAlert.objects.filter(kind=ReserveAlertKind.BANK_EVENT).count() == 1
    assert_books_clean()


def test_the_sweep_requeues_an_approved_redemption_whose_task_was_lost(rails, funded, eager_tasks, settings):
    redemption = request(funded, "30.00")  # committed, but its on-commit task never ran
    settings.REDEMPTION_PAYOUT_SWEEP_AFTER_S = 0

    assert redemption_payout_sweep_task.delay().get() == 1

    redemption.refresh_from_db()
    assert redemption.payout_id
    assert rails.settle(redemption).state == RedemptionState.PAID
    assert redemption_payout_sweep_task.delay().get() == 0
    assert_books_clean()

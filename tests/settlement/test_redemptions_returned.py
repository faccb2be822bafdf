"""Returned payouts: the bank paid a redemption, then the beneficiary's bank sent the funds back.

banksim is a real process; its test helper ``POST /v1/test_helpers/payouts/{id}/return`` moves a paid
payout to failed, credits the custodian's balance back and sends ``payout.failed`` after the
``payout.paid`` it already sent. Every event reaches our webhook view signed by the bank.
"""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from corporates.api_keys import api_key_create
from corporates.models import ApiScope, EnterpriseStatus, WebhookEvent
from corporates.onboarding.limits import DailyRedemptionLimitExceeded, enterprise_limits_set
from corporates.services import EnterpriseNotActive, enterprise_freeze
from settlement.deposits.models import ReserveAlert, ReserveAlertKind
from settlement.ledger.models import AccountKind, EntryKind, JournalEntry, Posting
from settlement.ledger.selectors import platform_account, wallet_for
from settlement.redemptions.models import Redemption, RedemptionState
from settlement.redemptions.services import Actor, redeemed_today, redemption_request
from settlement.reserves import reserves_attestation_build
from settlement.webhooks_in import signature_header_compute
from tests.settlement.mintredeem import *  # noqa: F403
from tests.settlement.mintredeem import Rails, assert_books_clean, minor
from tests.settlement.test_redemptions_portal import signed_in

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


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


def paid_redemption(rails: Rails, party, amount: str, capture) -> Redemption:
    """Request (below the threshold: approved at once), let banksim pay, apply its payout.paid."""
    with capture(execute=True):
        redemption = redemption_request(
            enterprise=party.enterprise,
            amount=amount,
            currency="HKD",
            bank_account=party.account("HKD"),
            actor=Actor(user=party.maker),
        )
    redemption = rails.settle(redemption)
    assert redemption.state == RedemptionState.PAID
    return redemption


def bank_returns(rails: Rails, redemption: Redemption, code: str = "account_closed"):
    """banksim's test helper sends the paid payout back; returns its payout.failed delivery."""
    with rails.bank.client() as client:
        payout = client.test_payout_return(
            payout_id=redemption.payout_id, idempotency_key=f"return-{redemption.public_id}", failure_code=code
        )
    assert payout.status == "failed"
    return rails.wait_event("payout.failed", redemption.payout_id)


def forged(rails: Rails, delivery, **changes):
    """The delivery's event with ``changes`` applied to its payout, signed with the bank's real secret."""
    event = json.loads(delivery.body)
    event["id"] = f"{event['id']}_x"
    event["type"] = changes.pop("type", event["type"])
    event["data"]["object"].update(changes)
    body = json.dumps(event).encode()
    return rails.deliver(
        delivery, body=body, signature=signature_header_compute(payload=body, secret=rails.bank.webhook_secret)
    )


def test_a_paid_payout_returned_by_the_bank_remints_the_tokens_in_one_entry(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    redemption = paid_redemption(rails, funded, "2500.25", django_capture_on_commit_callbacks)
    assert funded.wallet() == minor("7499.75") and reserve() == minor("7499.75") and in_transit() == 0
    assert rails.custodian() == minor("7499.75")

    response = rails.deliver(bank_returns(rails, redemption))

    assert response.status_code == 200 and response.json()["outcome"] == "handled"
    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.RETURNED and redemption.returned_at and redemption.paid_at
    assert redemption.failure_code == "account_closed"
    assert redemption.failure_message == "The bank account has been closed."
    # Wallet back, reserve back, in transit 0; the custodian holds the fiat again.
    assert funded.wallet() == minor("10000.00") and reserve() == minor("10000.00") and in_transit() == 0
    assert rails.custodian() == minor("10000.00")
    entry = JournalEntry.objects.get(kind=EntryKind.REDEMPTION_REVERSED)
    assert entry.idempotency_key == f"redemption:{redemption.public_id}:reversed"
    assert redemption.return_entry_id == entry.pk and redemption.settle_entry_id != entry.pk
    legs = set(Posting.objects.filter(entry=entry).values_list("account_id", "amount"))
    wallet = wallet_for(enterprise=funded.enterprise, currency="HKD")
    assert legs == {(platform_account(kind=AccountKind.RESERVE, currency="HKD").id, 250025), (wallet.id, -250025)}
    kinds = list(JournalEntry.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == [EntryKind.MINT, EntryKind.REDEMPTION, EntryKind.REDEMPTION_PAID, EntryKind.REDEMPTION_REVERSED]
    event = WebhookEvent.objects.get(type="redemption.returned", enterprise=funded.enterprise)
    assert event.data["redemption"] == redemption.public_id and event.data["state"] == "returned"
    assert event.data["amount"] == {"amount": "2500.25", "currency": "HKD"}
    assert event.data["failure"] == {"code": "account_closed", "message": "The bank account has been closed."}
    assert event.data["payout"] == redemption.payout_id and event.data["returned_at"] and event.data["paid_at"]
    assert not ReserveAlert.objects.exists()
    assert_books_clean()


def test_the_return_delivered_twice_and_paid_delivered_after_it_change_nothing_twice(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    redemption = paid_redemption(rails, funded, "40.00", django_capture_on_commit_callbacks)
    paid = rails.payout_outcome(redemption)
    returned = bank_returns(rails, redemption)

    outcomes = [rails.deliver(d).json()["outcome"] for d in (returned, returned, paid, returned, paid)]

    assert outcomes == ["handled"] * 5  # no alert: a late paid is the past, not a contradiction
    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.RETURNED
    assert JournalEntry.objects.filter(kind=EntryKind.REDEMPTION_REVERSED).count() == 1
    assert JournalEntry.objects.filter(kind=EntryKind.REDEMPTION_PAID).count() == 1
    assert WebhookEvent.objects.filter(type="redemption.returned").count() == 1
    assert WebhookEvent.objects.filter(type="redemption.paid").count() == 1
    assert funded.wallet() == minor("10000.00") and not ReserveAlert.objects.exists()
    assert_books_clean()


def test_a_failed_redemption_failed_again_stays_failed_and_is_never_reminted(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    closed = funded.account("HKD", number="000111111113")  # banksim fails payouts to it before paying
    with django_capture_on_commit_callbacks(execute=True):
        redemption = redemption_request(
            enterprise=funded.enterprise,
            amount="70.00",
            currency="HKD",
            bank_account=closed,
            actor=Actor(user=funded.maker),
        )
    failed = rails.payout_outcome(redemption)
    assert failed.event["type"] == "payout.failed"

    outcomes = [rails.deliver(failed).json()["outcome"] for _ in range(3)]

    assert outcomes == ["handled"] * 3
    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.FAILED and redemption.returned_at is None
    assert JournalEntry.objects.filter(kind=EntryKind.REDEMPTION_RETURNED).count() == 1
    assert not JournalEntry.objects.filter(kind=EntryKind.REDEMPTION_REVERSED).exists()
    assert funded.wallet() == minor("10000.00")
    assert_books_clean()


def test_a_return_that_contradicts_the_redemption_is_alerted_and_moves_nothing(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    redemption = paid_redemption(rails, funded, "20.00", django_capture_on_commit_callbacks)
    paid = rails.payout_outcome(redemption)
    failure = {"type": "payout.failed", "status": "failed", "failure_code": "account_closed"}

    answers = [
        forged(rails, paid, amount=1999, **failure),  # another amount
        forged(rails, paid, currency="usd", **failure),  # another currency
        forged(rails, paid, id="po_someone_else", **failure),  # another payout naming our redemption
        forged(rails, paid, type="payout.canceled", status="canceled"),  # a paid payout cannot be cancelled
    ]

    assert [a.json()["outcome"] for a in answers] == ["alerted"] * 4
    codes = sorted(a.details["code"] for a in ReserveAlert.objects.filter(kind=ReserveAlertKind.BANK_EVENT))
    assert codes == ["payout_contradiction", "payout_contradiction", "payout_mismatch", "payout_mismatch"]
    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.PAID and redemption.returned_at is None
    assert not JournalEntry.objects.filter(kind=EntryKind.REDEMPTION_REVERSED).exists()
    assert funded.wallet() == minor("9980.00")
    assert_books_clean()  # nothing came back at the bank either


def test_a_frozen_enterprise_gets_its_tokens_back_in_its_frozen_wallet(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    redemption = paid_redemption(rails, funded, "600.00", django_capture_on_commit_callbacks)
    enterprise_freeze(enterprise=funded.enterprise, reason="Sanctions review")

    response = rails.deliver(bank_returns(rails, redemption, code="account_frozen"))

    assert response.json()["outcome"] == "handled"
    redemption.refresh_from_db()
    funded.enterprise.refresh_from_db()
    assert redemption.state == RedemptionState.RETURNED and redemption.failure_code == "account_frozen"
    assert funded.enterprise.status == EnterpriseStatus.FROZEN  # still frozen: the tokens cannot leave
    assert funded.wallet() == minor("10000.00")
    with pytest.raises(EnterpriseNotActive):
        redemption_request(
            enterprise=funded.enterprise,
            amount="1.00",
            currency="HKD",
            bank_account=funded.account("HKD"),
            actor=Actor(user=funded.maker),
        )
    assert_books_clean()


def test_a_returned_redemption_no_longer_counts_toward_todays_limit(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks
):
    enterprise_limits_set(
        enterprise=funded.enterprise,
        currency="HKD",
        single_payment=None,
        daily_redemption="100.00",
        approval_threshold=None,
    )
    redemption = paid_redemption(rails, funded, "100.00", django_capture_on_commit_callbacks)
    # Paid counts: today's limit is used up.
    assert redeemed_today(enterprise=funded.enterprise, currency="HKD") == minor("100.00")
    with pytest.raises(DailyRedemptionLimitExceeded):
        redemption_request(
            enterprise=funded.enterprise,
            amount="0.01",
            currency="HKD",
            bank_account=funded.account("HKD"),
            actor=Actor(user=funded.maker),
        )

    rails.deliver(bank_returns(rails, redemption))

    # Returned does not: nothing left the platform, and the enterprise may send it again today.
    assert redeemed_today(enterprise=funded.enterprise, currency="HKD") == 0
    again = paid_redemption(rails, funded, "100.00", django_capture_on_commit_callbacks)
    assert again.state == RedemptionState.PAID
    assert funded.wallet() == minor("9900.00")
    assert_books_clean()


def test_the_enterprise_sees_the_return_in_the_api_and_the_portal_and_the_attestation_is_clean(
    rails, funded, eager_tasks, django_capture_on_commit_callbacks, settings
):
    settings.API_KEY_RATE_LIMIT = "100000/min"
    redemption = paid_redemption(rails, funded, "123.45", django_capture_on_commit_callbacks)
    rails.deliver(bank_returns(rails, redemption, code="no_account"))
    created = api_key_create(enterprise=funded.enterprise, name="erp", scopes=[ApiScope.READ], created_by=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.secret}")

    shown = client.get(f"/api/v1/redemptions/{redemption.public_id}").json()
    listed = client.get("/api/v1/redemptions?state=returned").json()["results"]
    page = signed_in(funded.maker).get("/settlement/redemptions/").content.decode()
    attestation = reserves_attestation_build(on=timezone.localdate(), signed_off_by="test")

    assert shown["state"] == "returned" and shown["returned_at"] and shown["paid_at"]
    assert shown["failure"]["code"] == "no_account" and shown["failure"]["message"]
    assert [r["id"] for r in listed] == [redemption.public_id]
    assert client.get("/api/v1/redemptions?state=paid").json()["results"] == []
    assert "Returned by the bank" in page and "returned by the bank" in page and "(no_account)" in page
    assert attestation.body["ledger_verification"]["ok"] and attestation.body["custodian"]["reconciled"]
    hkd = next(c for c in attestation.body["currencies"] if c["currency"] == "HKD")
    assert hkd["reserve_ledger"] == hkd["tokens_outstanding"] == {"amount": "10000.00", "currency": "HKD"}
    assert hkd["difference"] == {"amount": "0.00", "currency": "HKD"}
    assert_books_clean()

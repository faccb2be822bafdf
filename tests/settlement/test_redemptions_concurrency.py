"""Concurrency on PostgreSQL with real threads: the same event at once (a wire, paid payouts, a returned
payout), requests racing the daily limit."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client

from corporates.models import WebhookEvent
from corporates.onboarding.limits import DailyRedemptionLimitExceeded, enterprise_limits_set
from settlement.deposits.models import InboundWire, ReserveAlert
from settlement.deposits.services import deposit_reference_for
from settlement.ledger.models import EntryKind, JournalEntry
from settlement.redemptions.models import Redemption, RedemptionState
from settlement.redemptions.services import Actor, redemption_payout_create, redemption_request
from tests.factories import MembershipFactory
from tests.settlement.mintredeem import *  # noqa: F403
from tests.settlement.mintredeem import assert_books_clean, minor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def run_together(work: Callable[[int], object], count: int) -> list[object]:
    """Start ``count`` threads at one barrier; return what each returned or raised."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_one_wire_event_delivered_by_many_threads_at_once_mints_once(rails, make_enterprise):
    enterprise = make_enterprise()
    wire = rails.wire(amount="999.99", reference=deposit_reference_for(enterprise=enterprise, currency="HKD").reference)
    delivery = rails.wait_event("inbound_wire.received", wire["id"])

    def deliver(_: int) -> int:
        return (
            Client()
            .post(
                "/webhooks/bank/",
                data=delivery.body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=delivery.headers["Stripe-Signature"],
            )
            .status_code
        )

    assert run_together(deliver, 6) == [200] * 6
    assert InboundWire.objects.count() == 1
    assert JournalEntry.objects.filter(kind=EntryKind.MINT).count() == 1
    assert_books_clean()


def test_requests_racing_the_daily_limit_never_exceed_it(rails, redeemer):
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    enterprise_limits_set(
        enterprise=party.enterprise,
        currency="HKD",
        single_payment=None,
        daily_redemption="100.00",
        approval_threshold="0",  # every request waits for a checker: the race is on the count alone
    )
    makers = [MembershipFactory(enterprise=party.enterprise, role="maker").user for _ in range(5)]
    account = party.account("HKD")

    def ask(index: int) -> Redemption:
        return redemption_request(
            enterprise=party.enterprise,
            amount="30.00",
            currency="HKD",
            bank_account=account,
            actor=Actor(user=makers[index]),
        )

    results = run_together(ask, 5)

    accepted = [r for r in results if isinstance(r, Redemption)]
    refused = [r for r in results if isinstance(r, DailyRedemptionLimitExceeded)]
    assert len(accepted) == 3 and len(refused) == 2, results
    assert sum(Redemption.objects.values_list("amount", flat=True)) == minor("90.00")
    assert_books_clean()


def test_many_payouts_paid_at_once_settle_each_redemption_once(rails, redeemer):
    """Every paid redemption locks the one in-transit account: many at once, each delivered twice, and racing
    the worker's record of its payout id, settle each once, with one entry per state change."""
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    redemptions = [
        redemption_request(
            enterprise=party.enterprise,
            amount="10.00",
            currency="HKD",
            bank_account=party.account("HKD"),
            actor=Actor(user=party.maker),
        )
        for _ in range(4)
    ]
    with rails.bank.client() as client:  # the payouts as the worker creates them, not yet recorded by it
        destination = client.external_account_create(
            account_number=party.account("HKD").account_number,
            currency="HKD",
            account_holder_name=party.account("HKD").holder_name,
            idempotency_key=f"hl-bank-account-{party.account('HKD').public_id}",
            metadata={"bank_account": party.account("HKD").public_id, "enterprise": party.enterprise.public_id},
        )
        payouts = [
            client.payout_create(
                amount_minor=r.amount,
                currency="HKD",
                destination=destination.id,
                idempotency_key=r.payout_idempotency_key,
                metadata={"redemption": r.public_id, "enterprise": party.enterprise.public_id},
                description=f"Harbourline redemption {r.public_id}",
            )
            for r in redemptions
        ]
    deliveries = [rails.wait_event("payout.paid", payout.id) for payout in payouts]

    def work(index: int) -> object:
        if index >= 2 * len(deliveries):  # the worker's retry records the payout it already made
            return redemption_payout_create(redemption_id=redemptions[index - 2 * len(deliveries)].pk).payout_id
        delivery = deliveries[index // 2]
        return (
            Client()
            .post(
                "/webhooks/bank/",
                data=delivery.body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=delivery.headers["Stripe-Signature"],
            )
            .status_code
        )

    results = run_together(work, 3 * len(deliveries))

    assert results[: 2 * len(deliveries)] == [200] * (2 * len(deliveries)), results
    assert results[2 * len(deliveries) :] == [payout.id for payout in payouts], results
    for redemption, payout in zip(redemptions, payouts, strict=True):
        redemption.refresh_from_db()
        assert (redemption.state, redemption.payout_id) == (RedemptionState.PAID, payout.id)
    assert JournalEntry.objects.filter(kind=EntryKind.REDEMPTION).count() == len(redemptions)
    assert JournalEntry.objects.filter(kind=EntryKind.REDEMPTION_PAID).count() == len(redemptions)
    assert len(rails.payouts()) == len(redemptions)
    assert_books_clean()


def test_one_return_delivered_by_two_threads_at_once_remints_once(rails, redeemer):
    """The bank's payout.failed for a paid payout, delivered twice at the same moment (at least once:
    two deliveries, two web workers): the redemption's row lock lets one return it; the other finds it
    returned. One entry, one event, the tokens back once."""
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    redemption = redemption_request(
        enterprise=party.enterprise,
        amount="250.00",
        currency="HKD",
        bank_account=party.account("HKD"),
        actor=Actor(user=party.maker),
    )
    redemption = redemption_payout_create(redemption_id=redemption.pk)  # what the worker does
    assert rails.deliver(rails.wait_event("payout.paid", redemption.payout_id)).status_code == 200
    with rails.bank.client() as client:
        client.test_payout_return(payout_id=redemption.payout_id, idempotency_key="return-once")
    returned = rails.wait_event("payout.failed", redemption.payout_id)

    def deliver(_: int) -> tuple[int, str]:
        response = Client().post(
            "/webhooks/bank/",
            data=returned.body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=returned.headers["Stripe-Signature"],
        )
        return response.status_code, response.json()["outcome"]

    assert run_together(deliver, 2) == [(200, "handled")] * 2
    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.RETURNED
    assert JournalEntry.objects.filter(kind=EntryKind.REDEMPTION_REVERSED).count() == 1
    assert WebhookEvent.objects.filter(type="redemption.returned").count() == 1
    assert party.wallet() == minor("1000.00") and rails.custodian() == minor("1000.00")
    assert not ReserveAlert.objects.exists()
    assert_books_clean()

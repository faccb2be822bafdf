"""The payout dispatcher: approvals share one queued dispatch; dispatchers claim disjoint batches.

banksim runs as a real process; the queue checks read the Redis broker itself.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.utils import timezone

from config import flags
from settlement.redemptions.facts import redemptions_claim_for_payout
from settlement.redemptions.models import RedemptionState
from settlement.redemptions.services import payouts_dispatch, payouts_wake
from tests.concurrency import run_in_threads
from tests.settlement.mintredeem import *  # noqa: F403
from tests.settlement.mintredeem import approve, assert_books_clean, minor

pytestmark = pytest.mark.integration


@pytest.fixture
def payout_queue(settings):
    """A queue of this test's own on the Redis broker; its length is what the platform queued."""
    if not settings.CELERY_BROKER_URL.startswith("redis://") or not flags.flags_shared():
        pytest.skip("needs the Redis broker (make test)")
    settings.REDEMPTION_PAYOUT_QUEUE = f"itest-dispatch-{os.getpid()}-{time.monotonic_ns()}"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield lambda: broker.llen(settings.REDEMPTION_PAYOUT_QUEUE)
    broker.delete(settings.REDEMPTION_PAYOUT_QUEUE)
    flags.flag_lower(f"settlement:payouts:dispatch-queued:{settings.REDEMPTION_PAYOUT_QUEUE}")


@pytest.mark.django_db
def test_one_dispatch_pays_every_approval_committed_before_it_and_a_second_pays_nothing(rails, redeemer):
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    redemptions = [approve(party, amount) for amount in ("100.00", "200.00", "300.01")]

    assert payouts_dispatch(batch_size=2, linger_s=0, concurrency=1) == 3  # two batches: 2 + 1
    assert payouts_dispatch(linger_s=0, concurrency=1) == 0

    payouts = {p.metadata["redemption"]: p for p in rails.payouts()}
    assert len(payouts) == 3
    for redemption in redemptions:
        redemption.refresh_from_db()
        assert redemption.payout_id == payouts[redemption.public_id].id
        assert payouts[redemption.public_id].amount_minor == redemption.amount
        assert redemption.payout_attempts == 1
        assert rails.settle(redemption).state == RedemptionState.PAID
    assert party.wallet() == minor("399.99")
    assert_books_clean()


@pytest.mark.django_db(transaction=True)
def test_dispatchers_running_at_once_claim_disjoint_batches_and_a_claim_expires(rails, redeemer, payout_queue):
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    ids = {approve(party, "10.00").pk for _ in range(6)}
    now = timezone.now()
    until = now + timedelta(seconds=60)
    start = threading.Barrier(2)
    claims: list[set[int]] = []

    def dispatcher() -> None:
        try:
            start.wait(timeout=10)
            claims.append({r.pk for r in redemptions_claim_for_payout(now=now, until=until, limit=4)})
        finally:
            connection.close()

    run_in_threads(dispatcher, 2)

    first, second = claims
    # Disjoint, none missed, none over the limit (how they split depends on how the scans interleave).
    assert not first & second and first | second == ids and max(len(first), len(second)) <= 4
    assert redemptions_claim_for_payout(now=now, until=until, limit=10) == []  # every claim is live
    reclaimed = redemptions_claim_for_payout(now=until + timedelta(seconds=1), until=until, limit=10)
    assert {r.pk for r in reclaimed} == ids  # a dispatcher that died leaves them to the next after the claim
    assert {r.payout_attempts for r in reclaimed} == {2}
    assert rails.payouts() == []


@pytest.mark.django_db(transaction=True)
def test_approvals_queue_one_dispatch_until_it_starts(payout_queue):
    payouts_wake()
    payouts_wake()
    payouts_wake()
    assert payout_queue() == 1  # one message serves the three

    assert (
        payouts_dispatch(linger_s=0, concurrency=1) == 0
    )  # nothing to do: it lowers the flag before its last look and stops
    payouts_wake()
    assert payout_queue() == 2


@pytest.mark.django_db
def test_a_bank_outage_during_a_dispatch_hands_each_redemption_to_its_retrying_task(
    rails, redeemer, settings, payout_queue
):
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    redemptions = [approve(party, "250.00"), approve(party, "150.00")]
    settings.BANK_RAILS_MAX_RETRIES = 0
    rails.bank.faults(error_rate=1.0)

    assert payouts_dispatch(linger_s=0, concurrency=1) == 0

    assert payout_queue() == 2  # one settlement.redemption_payout task each, retried with backoff
    rails.bank.faults(error_rate=0.0)
    for redemption in redemptions:
        redemption.refresh_from_db()
        assert redemption.state == RedemptionState.PROCESSING and redemption.payout_id is None
        assert redemption.payout_claimed_until is not None  # the next dispatch leaves it to its task
    assert payouts_dispatch(linger_s=0, concurrency=1) == 0
    assert rails.payouts() == []


@pytest.mark.django_db(transaction=True)
def test_a_lingering_dispatch_serves_approvals_that_arrive_while_it_waits_with_no_message_each(
    rails, redeemer, payout_queue
):
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    made: list[int] = []

    def dispatch() -> None:
        try:
            made.append(payouts_dispatch(linger_s=3, concurrency=1))
        finally:
            connection.close()

    dispatcher = threading.Thread(target=dispatch)
    dispatcher.start()
    time.sleep(0.3)  # it found nothing and lingers, its flag up
    redemptions = [approve(party, "100.00"), approve(party, "50.00")]  # each commits and wakes it
    dispatcher.join(timeout=30)

    assert made == [2]
    assert payout_queue() == 0  # neither approval queued a message: the lingering dispatch took both
    for redemption in redemptions:
        redemption.refresh_from_db()
        assert redemption.payout_id and rails.settle(redemption).state == RedemptionState.PAID
    assert party.wallet() == minor("850.00")
    assert_books_clean()


@pytest.mark.django_db(transaction=True)
def test_a_dispatch_past_its_time_queues_its_successor_and_stops(rails, redeemer, payout_queue, settings):
    party = redeemer()
    rails.fund(party.enterprise, "100.00")
    approve(party, "10.00")  # commits: queues a dispatch (message 1), flag up
    settings.REDEMPTION_PAYOUT_DISPATCH_MAX_S = 0

    assert payouts_dispatch(linger_s=5, concurrency=1) == 0  # stops at once, before its first claim

    assert payout_queue() == 2  # its successor is queued
    assert rails.payouts() == []

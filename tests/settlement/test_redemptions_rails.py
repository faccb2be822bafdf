"""The payout against an unreliable bank: 500s, timeouts, and a worker that dies mid-payout.

banksim runs as a real process with its fault injection; the crash test runs
real Celery workers (subprocesses) on Redis against the test database.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import timedelta

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from settlement.deposits.services import deposit_reference_for
from settlement.rails import RailsApiError, RailsUnavailable
from settlement.redemptions.models import Redemption, RedemptionState
from settlement.redemptions.services import (
    redemption_payout_create,
    redemptions_awaiting_payout,
)
from tests.processes import celery_worker_start, worker_environment
from tests.settlement.mintredeem import *  # noqa: F403
from tests.settlement.mintredeem import approve, assert_books_clean, minor

pytestmark = pytest.mark.integration


@pytest.mark.django_db
def test_the_bank_answering_500s_leaves_the_redemption_processing_then_pays_once(rails, redeemer, settings):
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    redemption = approve(party, "400.00")
    rails.bank.faults(error_rate=1.0)

    with pytest.raises(RailsApiError) as refused:
        redemption_payout_create(redemption_id=redemption.pk)

    assert refused.value.retryable  # the task retries it later, with the same key
    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.PROCESSING and redemption.payout_id is None
    rails.bank.faults(error_rate=0.0)
    assert rails.payouts() == []
    rails.bank.faults(error_rate=0.3)  # about one call in three fails: the client's own retries get through
    settings.BANK_RAILS_MAX_RETRIES = 8

    redemption = redemption_payout_create(redemption_id=redemption.pk)

    rails.bank.faults(error_rate=0.0)
    assert redemption.payout_id
    assert rails.settle(redemption).state == RedemptionState.PAID
    assert len(rails.payouts()) == 1
    assert party.wallet() == minor("600.00")
    assert_books_clean()


@pytest.mark.django_db
def test_timeouts_after_the_bank_made_the_payout_never_pay_twice(rails, redeemer, settings):
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    redemption = approve(party, "250.00")
    # The bank makes the payout, then holds its answer past our timeout: the hard case.
    settings.BANK_RAILS_TIMEOUT_S = 0.5
    settings.BANK_RAILS_MAX_RETRIES = 1
    rails.bank.faults(timeout_rate=1.0, timeout_ms=1500)

    with pytest.raises(RailsUnavailable):
        redemption_payout_create(redemption_id=redemption.pk)

    rails.bank.faults(timeout_rate=0.0)
    redemption.refresh_from_db()
    assert redemption.payout_id is None
    redemption = redemption_payout_create(redemption_id=redemption.pk)  # the task's retry

    assert len(rails.payouts()) == 1 and rails.payouts()[0].id == redemption.payout_id
    assert rails.settle(redemption).state == RedemptionState.PAID
    assert rails.custodian() == minor("750.00")
    assert_books_clean()


def start_worker(queue: str, **extra_env: str) -> subprocess.Popen:
    env = worker_environment(result_backend=settings.CELERY_BROKER_URL)
    env.update(
        BANK_RAILS_BASE_URL=settings.BANK_RAILS_BASE_URL,
        BANK_RAILS_SECRET_KEY=settings.BANK_RAILS_SECRET_KEY,
        BANK_RAILS_ACCOUNT_ID=settings.BANK_RAILS_ACCOUNT_ID,
        BANK_RAILS_RETRY_BACKOFF_S="0.01",
        **extra_env,
    )
    return celery_worker_start(queue, env)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.django_db(transaction=True)
def test_a_worker_dying_between_the_payout_and_its_record_leaves_one_payout_at_the_bank(rails, redeemer):
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("needs a real broker (make test)")
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    redemption = approve(party, "123.45")
    queue = f"itest-payout-{os.getpid()}-{time.monotonic_ns()}"
    client = Celery("itest", broker=settings.CELERY_BROKER_URL, backend=settings.CELERY_BROKER_URL)

    doomed = start_worker(queue, REDEMPTION_TEST_CRASH_AFTER_PAYOUT="1")
    try:
        client.send_task("settlement.redemption_payout", kwargs={"redemption_id": redemption.pk}, queue=queue)
        assert doomed.wait(timeout=60) == 70, "the worker was to die at the crash point"
    finally:
        stop(doomed)

    (made,) = rails.payouts()  # the bank made it ...
    redemption.refresh_from_db()
    assert redemption.payout_id is None  # ... and we never recorded it
    assert made.amount_minor == redemption.amount

    survivor = start_worker(queue)
    try:
        # What the beat sweep does for an approved redemption with no payout recorded.
        assert redemptions_awaiting_payout(older_than=timedelta(0)) == [redemption.pk]
        result = client.send_task("settlement.redemption_payout", kwargs={"redemption_id": redemption.pk}, queue=queue)
        result.get(timeout=60)
    finally:
        stop(survivor)

    redemption.refresh_from_db()
    assert redemption.payout_id == made.id
    assert [p.id for p in rails.payouts()] == [made.id]  # still one payout at the bank
    assert rails.settle(redemption).state == RedemptionState.PAID
    assert party.wallet() == minor("876.55")
    assert_books_clean()


@pytest.mark.django_db(transaction=True)
def test_a_worker_dying_mid_dispatch_leaves_one_payout_which_the_next_dispatch_records_after_the_claim(
    rails, redeemer, settings
):
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("needs a real broker (make test)")
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    queue = settings.REDEMPTION_PAYOUT_QUEUE = f"itest-dispatch-{os.getpid()}-{time.monotonic_ns()}"
    client = Celery("itest", broker=settings.CELERY_BROKER_URL, backend=settings.CELERY_BROKER_URL)

    doomed = start_worker(queue, REDEMPTION_TEST_CRASH_AFTER_PAYOUT="1", REDEMPTION_PAYOUT_QUEUE=queue)
    try:
        redemption = approve(party, "123.45")  # commits: its wake queues a dispatch on our queue
        assert doomed.wait(timeout=60) == 70, "the worker was to die at the crash point"
    finally:
        stop(doomed)

    (made,) = rails.payouts()  # the bank made it ...
    redemption.refresh_from_db()
    assert redemption.payout_id is None and redemption.payout_claimed_until is not None  # ... the dead dispatch's
    survivor = start_worker(queue, REDEMPTION_PAYOUT_QUEUE=queue)
    try:
        dispatch = "settlement.redemption_payouts_dispatch"
        assert client.send_task(dispatch, kwargs={"linger_s": 0}, queue=queue).get(timeout=60) == 0  # claim live
        # The claim expires (moved back rather than waited for): the next dispatch takes it, same key.
        Redemption.objects.filter(pk=redemption.pk).update(payout_claimed_until=timezone.now() - timedelta(seconds=1))
        assert client.send_task(dispatch, kwargs={"linger_s": 0}, queue=queue).get(timeout=60) == 1
    finally:
        stop(survivor)

    redemption.refresh_from_db()
    assert redemption.payout_id == made.id and redemption.payout_attempts == 2
    assert [p.id for p in rails.payouts()] == [made.id]  # still one payout at the bank
    assert rails.settle(redemption).state == RedemptionState.PAID
    assert party.wallet() == minor("876.55")
    assert_books_clean()


def wait_until(predicate, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_end_to_end_the_bank_calls_our_server_and_a_real_worker_pays(banksim_factory, live_server, redeemer, settings):
    """Nothing simulated on our side: banksim delivers (twice, shuffled) to a live server; a worker pays."""
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("needs a real broker (make test)")
    bank = banksim_factory(
        webhook_url=f"{live_server.url}/webhooks/bank/",
        opening_balances={},
        webhook_duplicate_rate=1.0,
        webhook_shuffle_ms=100,
    )
    settings.BANK_RAILS_BASE_URL = bank.url
    settings.BANK_RAILS_SECRET_KEY = bank.secret_key
    settings.BANK_RAILS_WEBHOOK_SECRET = bank.webhook_secret
    settings.BANK_RAILS_ACCOUNT_ID = bank.account_id
    party = redeemer()
    reference = deposit_reference_for(enterprise=party.enterprise, currency="HKD").reference
    with bank.client() as client:
        client.test_inbound_wire(amount_minor=50_000, currency="HKD", reference=reference, idempotency_key="e2e-wire")
    wait_until(lambda: party.wallet() == 50_000, what="the wire to be minted")

    settings.REDEMPTION_PAYOUT_QUEUE = f"itest-e2e-{os.getpid()}-{time.monotonic_ns()}"
    worker = start_worker(settings.REDEMPTION_PAYOUT_QUEUE)  # where the on-commit payout task goes
    try:
        redemption = approve(party, "120.00")  # the request commits; its payout task is queued
        wait_until(lambda: Redemption.objects.get(pk=redemption.pk).state == RedemptionState.PAID, what="the payout")
    finally:
        stop(worker)

    redemption.refresh_from_db()
    with bank.client() as client:
        payouts = list(client.payouts_iter())
        custodian = client.balance_retrieve().available["HKD"]
    assert [p.id for p in payouts] == [redemption.payout_id] and payouts[0].amount_minor == 12_000
    assert party.wallet() == 38_000 and custodian == 38_000
    assert_books_clean()

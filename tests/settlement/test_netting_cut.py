"""The cut: a running batch holds its obligations by a predicate, not by rewriting them (settlement.netting.cut)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from config.db import run_in_transaction
from corporates.models import MemberRole
from corporates.onboarding.limits import enterprise_limits_set
from settlement.ledger.selectors import balances_for, ledger_verify
from settlement.netting import services
from settlement.netting.cut import NettingInProgress, with_running_batches, writers_guard
from settlement.netting.models import BatchStatus, NettingBatch
from settlement.netting.services import batch_open, batch_run, netting_preview
from settlement.obligations.models import Obligation, ObligationStatus
from settlement.obligations.services import (
    ObligationNotCancellable,
    obligation_approve,
    obligation_cancel,
    obligation_create,
)
from tests.api.conftest import _api_settings, make_client, make_key  # noqa: F401 - fixtures
from tests.factories import MembershipFactory
from tests.settlement.test_netting import minor, owe

pytestmark = pytest.mark.django_db


def net_only(batch: NettingBatch) -> NettingBatch:
    """Run a batch up to settling (cut and netted, nothing settled), as a worker that is still busy would leave it."""
    for step in (services._attempt, services._start_netting, services._cut, services._net):
        run_in_transaction(lambda step=step: step(batch.pk))
    batch.refresh_from_db()
    assert batch.status == BatchStatus.SETTLING
    return batch


def stored(obligation: Obligation) -> Obligation:
    obligation.refresh_from_db()
    return obligation


def test_a_running_batch_holds_its_obligations_in_batch_and_refuses_changes(make_enterprise, mint, make_client):  # noqa: F811
    a, b = make_enterprise(), make_enterprise()
    mint(a, "100.00")
    enterprise_limits_set(
        enterprise=a, currency="HKD", single_payment="5000.00", daily_redemption=None, approval_threshold="1000.00"
    )
    maker = MembershipFactory(enterprise=a, role=MemberRole.MAKER).user
    checker = MembershipFactory(enterprise=a, role=MemberRole.CHECKER).user
    taken = owe(a, b, "60.00")
    unapproved = obligation_create(
        payer=a, payee=b.public_id, amount="1500.00", currency="HKD", value_date=timezone.localdate(),
        external_reference="BIG-1", created_by=maker,
    )  # fmt: skip
    batch = net_only(batch_open())
    later = owe(a, b, "5.00")  # after the cut: not the batch's

    assert batch.cut_id == unapproved.pk
    [held, waiting, after] = with_running_batches(Obligation.objects.filter(pk__in=[taken.pk, unapproved.pk, later.pk]))
    assert (held.status, held.status_shown, held.batch_public_id_shown) == ("pending", "in_batch", batch.public_id)
    assert waiting.status_shown == "pending" and after.status_shown == "pending"
    api = make_client(a)
    listed = api.get("/api/v1/obligations", {"status": "in_batch"}).json()["results"]
    assert [(o["id"], o["status"], o["batch"]) for o in listed] == [(taken.public_id, "in_batch", batch.public_id)]
    pending = api.get("/api/v1/obligations", {"status": "pending"}).json()["results"]
    assert {o["id"] for o in pending} == {unapproved.public_id, later.public_id}
    assert api.get(f"/api/v1/obligations/{taken.public_id}").json()["status"] == "in_batch"
    # Taken: the payer may not cancel it. Approved now, the other would fall under the cut: it waits.
    with pytest.raises(ObligationNotCancellable):
        obligation_cancel(obligation=taken, payer=a)
    with pytest.raises(NettingInProgress):
        obligation_approve(obligation=unapproved, approver=checker)
    refused = api.post(
        f"/api/v1/obligations/{taken.public_id}/cancel", {}, format="json", HTTP_IDEMPOTENCY_KEY="cancel-held"
    )
    assert refused.status_code == 409 and refused.json()["code"] == "obligation_not_cancellable"
    # What the batch does not hold stays free, and the preview of the next cut-off leaves the batch's out.
    assert [row.owes for row in netting_preview(enterprise=a)] == [minor("5.00")]
    obligation_cancel(obligation=later, payer=a)

    batch = batch_run(batch_id=batch.pk)

    assert stored(taken).status == ObligationStatus.SETTLED and taken.batch_id == batch.pk
    assert stored(unapproved).status == ObligationStatus.PENDING and unapproved.batch_id is None
    assert stored(later).status == ObligationStatus.CANCELLED
    assert batch.report["obligations"]["claimed"] == 1
    obligation_approve(obligation=unapproved, approver=checker)  # the batch is over
    assert balances_for(enterprise=b)["HKD"] == minor("60.00")
    assert ledger_verify().ok


def test_a_batch_running_at_another_ones_cut_is_left_out_of_it(make_enterprise, mint):
    a, b, c = make_enterprise(), make_enterprise(), make_enterprise()
    mint(a, "10.00")
    mint(c, "50.00")
    short = owe(a, b, "40.00")  # a cannot pay: the first batch rolls it back to pending
    paid = owe(c, b, "20.00")
    first = net_only(batch_open(trigger="every 15 minutes"))
    fresh = owe(c, b, "7.00")
    second = net_only(batch_open(trigger="16:00 HKT"))

    assert second.cut_exclusions == [[first.cut_id, first.value_date.isoformat()]]
    batch_run(batch_id=first.pk)
    assert stored(short).status == ObligationStatus.PENDING and short.batch_id == first.pk and short.roll_count == 1
    second = batch_run(batch_id=second.pk)

    # The second batch netted and marked only what came after the first one's cut:
    # not the obligation the first one rolled back while the second was running.
    assert second.report["obligations"]["claimed"] == 1
    assert stored(fresh).status == ObligationStatus.SETTLED and fresh.batch_id == second.pk
    assert stored(paid).batch_id == first.pk and paid.status == ObligationStatus.SETTLED
    assert stored(short).status == ObligationStatus.PENDING and short.batch_id == first.pk
    assert balances_for(enterprise=b)["HKD"] == minor("27.00")
    third = batch_run(batch_id=batch_open().pk)  # the next cut-off takes the rolled one again
    assert third.report["obligations"] == {"claimed": 1, "settled": 0, "rolled": 1, "failed": 0}
    assert ledger_verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_cut_waits_for_an_insert_in_flight(make_enterprise, mint):
    """Rows inserted before the cut but committed after it would fall under the cut unnetted: the cut waits for them."""
    a, b = make_enterprise(), make_enterprise()
    mint(a, "100.00")
    inserted, release, outcome = threading.Event(), threading.Event(), {}

    def slow_insert():
        try:
            with transaction.atomic():
                owe(a, b, "30.00")  # holds writers_guard until this outer transaction commits
                inserted.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def cutoff():
        try:
            outcome["batch"] = batch_run(batch_id=batch_open().pk)
        finally:
            connection.close()

    inserter = threading.Thread(target=slow_insert)
    inserter.start()
    assert inserted.wait(timeout=30)
    owe(a, b, "20.00")  # a later id, committed at once
    runner = threading.Thread(target=cutoff)
    runner.start()
    runner.join(timeout=2)
    assert runner.is_alive()  # the cut waits for the insert in flight
    release.set()
    inserter.join(timeout=30)
    runner.join(timeout=60)

    batch = outcome["batch"]
    assert batch.report["obligations"] == {"claimed": 2, "settled": 2, "rolled": 0, "failed": 0}
    assert set(Obligation.objects.values_list("status", flat=True)) == {ObligationStatus.SETTLED}
    assert balances_for(enterprise=b)["HKD"] == minor("50.00")
    assert ledger_verify().ok


@pytest.mark.django_db(transaction=True)
def test_an_approval_waits_for_a_cut_in_progress_and_is_then_refused(make_enterprise, mint):
    """The guard is a lock, not only a check: an approval cannot slip in between a cut and its commit."""
    a, b = make_enterprise(), make_enterprise()
    mint(a, "100.00")
    enterprise_limits_set(
        enterprise=a, currency="HKD", single_payment="5000.00", daily_redemption=None, approval_threshold="10.00"
    )
    maker = MembershipFactory(enterprise=a, role=MemberRole.MAKER).user
    checker = MembershipFactory(enterprise=a, role=MemberRole.CHECKER).user
    big = obligation_create(
        payer=a, payee=b.public_id, amount="50.00", currency="HKD", value_date=timezone.localdate(),
        external_reference="BIG-2", created_by=maker,
    )  # fmt: skip
    batch = batch_open()
    run_in_transaction(lambda: services._start_netting(batch.pk))
    holding, release, outcome = threading.Event(), threading.Event(), {}

    def cut_held_open():
        try:
            with transaction.atomic():
                services._cut(batch.pk)  # takes the cut's lock; the batch is not committed yet
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def approve():
        try:
            obligation_approve(obligation=big, approver=checker)
            outcome["approval"] = "approved"
        except NettingInProgress as exc:
            outcome["approval"] = exc.code
        finally:
            connection.close()

    cutter = threading.Thread(target=cut_held_open)
    cutter.start()
    assert holding.wait(timeout=30)
    approver = threading.Thread(target=approve)
    approver.start()
    approver.join(timeout=2)
    assert approver.is_alive()  # waiting on the cut's lock
    release.set()
    cutter.join(timeout=30)
    approver.join(timeout=30)

    assert outcome["approval"] == "netting_in_progress"
    batch = batch_run(batch_id=batch.pk)
    assert batch.report["obligations"]["claimed"] == 0 and stored(big).needs_approval


def test_writers_guard_is_a_shared_advisory_lock_of_the_transaction():
    with transaction.atomic():
        writers_guard()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
            assert cursor.fetchone()[0] == 1
            cursor.execute("SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
            assert cursor.fetchone()[0] == "ShareLock"

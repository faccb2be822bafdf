"""Exactly once in multilateral mode: a real Celery worker is killed (-9) between pay-in and pay-out.

The worker pauses (test-only NETTING_TEST_PAUSE_AT="between_pay_in_and_pay_out")
after the net debtors' pay-ins have committed, with clearing holding them;
it is killed there, and a fresh worker — started without the setting, since
the batch keeps the mode it netted with — retries the batch: it pays the
creditors out, posts no pay-in twice, and leaves clearing at zero.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from settlement.ledger.models import AccountKind, EntryKind, JournalEntry
from settlement.ledger.selectors import balances_for, ledger_verify, platform_account
from settlement.netting.models import BatchStatus
from settlement.netting.services import batch_open
from settlement.obligations.models import Obligation, ObligationStatus
from settlement.obligations.services import obligations_create_bulk
from tests.settlement.test_netting_worker import batch_state, start_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def clearing_balance() -> int:
    return platform_account(kind=AccountKind.CLEARING, currency="HKD").balance


def netting_entries() -> int:
    return JournalEntry.objects.filter(kind=EntryKind.NETTING).count()


def test_a_worker_killed_between_pay_in_and_pay_out_settles_everything_once(make_enterprise, mint):
    # a owes b 100, b owes c 60, c owes a 30, d owes b 50: a -70, b +90, c +30, d -50.
    a, b, c, d = (make_enterprise() for _ in range(4))
    mint(a, "70.00", "HKD")
    mint(d, "50.00", "HKD")
    today = timezone.localdate().isoformat()
    for n, (payer, payee, amount) in enumerate([(a, b, "100.00"), (b, c, "60.00"), (c, a, "30.00"), (d, b, "50.00")]):
        row = {"payee": payee.public_id, "amount": amount, "currency": "HKD", "value_date": today}
        obligations_create_bulk(payer=payer, rows=[{**row, "external_reference": f"MW-{n}"}])
    queue = f"netting-multilateral-kill-{os.getpid()}-{time.monotonic_ns()}"
    client = Celery("itest", broker=settings.CELERY_BROKER_URL)
    batch = batch_open(trigger="test")
    victim = start_worker(
        queue,
        NETTING_MULTILATERAL_CURRENCIES="HKD",
        NETTING_TEST_PAUSE_SECONDS="30",
        NETTING_TEST_PAUSE_AT="between_pay_in_and_pay_out",
    )
    try:
        client.send_task("netting.batch_run", kwargs={"batch_id": batch.pk}, queue=queue)
        wait_for(lambda: clearing_balance() > 0, what="the pay-ins to commit")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        if victim.poll() is None:
            victim.kill()

    killed = batch_state(batch.pk)
    assert killed.status == BatchStatus.SETTLING and killed.multilateral_currencies == ["HKD"]
    assert clearing_balance() == 12_000  # a's 70 and d's 50, nothing paid out yet
    assert netting_entries() == 2
    assert Obligation.objects.filter(status=ObligationStatus.IN_BATCH).count() == 4
    assert not ledger_verify().ok and ledger_verify(clearing_may_be_open=True).ok

    rescuer = start_worker(queue)  # no NETTING_MULTILATERAL_CURRENCIES: the batch's own mode holds
    try:
        client.send_task("netting.batch_run", kwargs={"batch_id": batch.pk}, queue=queue)
        wait_for(lambda: batch_state(batch.pk).status == BatchStatus.COMPLETED, what="the batch to complete")
    finally:
        rescuer.terminate()
        rescuer.wait(timeout=15)

    done = batch_state(batch.pk)
    assert done.attempts == 2
    assert netting_entries() == 4  # two pay-ins, once each; two pay-outs
    assert [balances_for(enterprise=e)["HKD"] for e in (a, b, c, d)] == [0, 9_000, 3_000, 0]
    assert Obligation.objects.filter(status=ObligationStatus.SETTLED).count() == 4
    assert clearing_balance() == 0
    assert ledger_verify().ok

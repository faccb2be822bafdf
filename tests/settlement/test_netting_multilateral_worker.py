"""Multilateral mode on a real worker and real threads: a kill between pay-in and pay-out; a racing transfer.

The worker pauses (test-only NETTING_TEST_PAUSE_AT="between_pay_in_and_pay_out")
after the net debtors' pay-ins have committed, with clearing holding them;
it is killed there, and a fresh worker — started without the setting, since
the batch keeps the mode it netted with — retries the batch: it pays the
creditors out, posts no pay-in twice, and leaves clearing at zero. And a
pay-in that meets a transfer holding a debtor's wallet waits for it, then
sees the balance the transfer left.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from settlement.ledger.models import Account, AccountKind, EntryKind, JournalEntry
from settlement.ledger.selectors import balances_for, ledger_verify, platform_account, wallet_for
from settlement.ledger.services import ledger_post, legs_debit_credit
from settlement.netting.cut import with_running_batches
from settlement.netting.models import BatchStatus
from settlement.netting.services import batch_open, batch_run
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
    held = with_running_batches(Obligation.objects.all())
    assert [o.status_shown for o in held] == [ObligationStatus.IN_BATCH] * 4  # stored pending, held by the cut
    assert {o.batch_public_id_shown for o in held} == {killed.public_id}
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


def test_a_pay_in_waits_for_a_transfer_holding_the_debtors_wallet_then_sees_its_balance(make_enterprise, mint):
    # a (net debtor, 70) is paying its 70 elsewhere in another transaction when the batch
    # reaches the pay-in: the pay-in locks the wallets before it checks them, so it waits,
    # then finds a short and removes it, instead of reading a stale 70 and failing the batch.
    a, b, elsewhere = make_enterprise(), make_enterprise(), make_enterprise()
    mint(a, "70.00", "HKD")
    today = timezone.localdate().isoformat()
    row = {"payee": b.public_id, "amount": "70.00", "currency": "HKD", "value_date": today, "external_reference": "MC"}
    obligations_create_bulk(payer=a, rows=[row])
    wallet = wallet_for(enterprise=a, currency="HKD")
    locked, done = threading.Event(), threading.Event()

    def pay_elsewhere() -> None:
        try:
            with transaction.atomic():
                Account.objects.select_for_update().get(pk=wallet.pk)
                locked.set()
                time.sleep(1.5)  # the batch meanwhile nets, then waits on this lock
                ledger_post(
                    idempotency_key="mc:elsewhere",
                    kind=EntryKind.TRANSFER,
                    legs=legs_debit_credit(
                        debit=wallet, credit=wallet_for(enterprise=elsewhere, currency="HKD"), minor=7_000
                    ),
                )
        finally:
            done.set()
            connection.close()

    thread = threading.Thread(target=pay_elsewhere)
    thread.start()
    assert locked.wait(10)
    with override_settings(NETTING_MULTILATERAL_CURRENCIES=["HKD"]):
        batch = batch_run(batch_id=batch_open().pk)
    thread.join(10)

    assert done.is_set() and batch.status == BatchStatus.COMPLETED
    assert [balances_for(enterprise=e)["HKD"] for e in (a, b, elsewhere)] == [0, 0, 7_000]
    obligation = Obligation.objects.get(external_reference="MC")
    assert obligation.status == ObligationStatus.PENDING and obligation.reason.startswith("insufficient_funds")
    assert clearing_balance() == 0 and netting_entries() == 0
    assert ledger_verify().ok

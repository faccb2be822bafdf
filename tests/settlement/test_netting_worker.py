"""Exactly once: a real Celery worker on Redis is killed (-9) mid-batch, then the batch is retried.

The worker runs a test-only pause (NETTING_TEST_PAUSE_SECONDS) either between
liquidity passes (committed passes stay, the rest is resumed) or inside a pass
before it commits (the pass rolls back whole and is redone). Either way the
retry settles nothing twice and loses no obligation.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from django.utils import timezone

from settlement.ledger.models import EntryKind, JournalEntry
from settlement.ledger.selectors import balances_for, ledger_verify
from settlement.netting.cut import with_running_batches
from settlement.netting.models import BatchStatus, NettingBatch, NettingPair
from settlement.netting.services import batch_open
from settlement.obligations.models import Obligation, ObligationStatus
from settlement.obligations.services import obligations_create_bulk
from tests.processes import celery_worker_start, worker_environment

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
LOG = Path(os.environ.get("NETTING_WORKER_LOG", os.devnull))


def start_worker(queue: str, **env_extra: str) -> subprocess.Popen:
    env = worker_environment()
    env.update(env_extra)
    return celery_worker_start(queue, env, stdout=LOG.open("a"))


def wait_for(predicate, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def batch_state(batch_id: int) -> NettingBatch:
    return NettingBatch.objects.get(pk=batch_id)


@pytest.fixture
def chain(make_enterprise, mint):
    """Five enterprises where only the first holds funds: a→b→c→d→e needs four liquidity passes."""
    if connection.vendor != "postgresql" or settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("needs PostgreSQL and a real broker (make test)")
    parties = [make_enterprise() for _ in range(5)]
    mint(parties[0], "100.00", "HKD")
    for index, (payer, payee) in enumerate(zip(parties, parties[1:], strict=False)):
        obligations_create_bulk(
            payer=payer,
            rows=[
                {
                    "payee": payee.public_id,
                    "amount": amount,
                    "currency": "HKD",
                    "value_date": timezone.localdate().isoformat(),
                    "external_reference": f"K-{index}-{n}",
                }
                for n, amount in enumerate(("60.00", "40.00"))
            ],
        )
    return parties


@pytest.mark.parametrize("pause_at", ["between_passes", "in_pass"])
def test_a_worker_killed_mid_batch_and_retried_settles_everything_exactly_once(chain, pause_at):
    queue = f"netting-kill-{os.getpid()}-{time.monotonic_ns()}"
    client = Celery("itest", broker=settings.CELERY_BROKER_URL)
    batch = batch_open(trigger="test")
    victim = start_worker(queue, NETTING_TEST_PAUSE_SECONDS="3", NETTING_TEST_PAUSE_AT=pause_at)
    try:
        client.send_task("netting.batch_run", kwargs={"batch_id": batch.pk}, queue=queue)
        if pause_at == "between_passes":
            wait_for(lambda: batch_state(batch.pk).passes >= 2, what="two committed passes")
        else:
            wait_for(lambda: batch_state(batch.pk).passes >= 1, what="one committed pass")
            time.sleep(1.5)  # inside pass 2's pause, before it commits
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        if victim.poll() is None:
            victim.kill()

    killed = batch_state(batch.pk)
    assert killed.status == BatchStatus.SETTLING and 1 <= killed.passes < 4
    entries_at_kill = JournalEntry.objects.filter(kind=EntryKind.NETTING).count()
    assert entries_at_kill == killed.passes  # a pass's entries commit with the pass, or not at all
    assert NettingPair.objects.filter(batch=batch, status="settled").count() == killed.passes
    # Obligations stay in the batch until it completes; none is lost or settled early.
    held = with_running_batches(Obligation.objects.all())
    assert [o.status_shown for o in held] == [ObligationStatus.IN_BATCH] * 8  # stored pending, held by the cut
    assert {o.batch_public_id_shown for o in held} == {killed.public_id}

    # The retry: the same task again, on a fresh worker (as a redelivery or the back office would).
    rescuer = start_worker(queue)
    try:
        client.send_task("netting.batch_run", kwargs={"batch_id": batch.pk}, queue=queue)
        wait_for(lambda: batch_state(batch.pk).status == BatchStatus.COMPLETED, what="the batch to complete")
    finally:
        rescuer.terminate()
        rescuer.wait(timeout=15)

    done = batch_state(batch.pk)
    assert done.passes == 4 and done.attempts == 2
    assert JournalEntry.objects.filter(kind=EntryKind.NETTING).count() == 4
    assert Obligation.objects.filter(status=ObligationStatus.SETTLED).count() == 8
    assert [balances_for(enterprise=e)["HKD"] for e in chain] == [0, 0, 0, 0, 10_000]
    assert ledger_verify().ok

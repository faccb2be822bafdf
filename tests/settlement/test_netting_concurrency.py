"""Two cut-offs firing together, on real threads and real PostgreSQL transactions."""

from __future__ import annotations

import itertools
import random
import threading
from collections import defaultdict

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from settlement.ledger.models import EntryKind, JournalEntry
from settlement.ledger.selectors import balances_for, ledger_verify
from settlement.netting.models import BatchStatus, NettingBatch, NettingPair
from settlement.netting.services import batch_open, batch_run
from settlement.obligations.models import Obligation, ObligationStatus
from settlement.obligations.services import obligation_cancel, obligations_create_bulk

pytestmark = pytest.mark.django_db(transaction=True)


def run_concurrently(*fns):
    barrier = threading.Barrier(len(fns))
    results, errors = [None] * len(fns), []

    def runner(index, fn):
        try:
            barrier.wait()
            results[index] = fn()
        except Exception as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, fn)) for i, fn in enumerate(fns)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def test_two_cutoffs_together_never_take_the_same_obligation(make_enterprise, mint):
    rng = random.Random(6)
    enterprises = [make_enterprise() for _ in range(6)]
    for enterprise in enterprises:
        mint(enterprise, "50.00", "HKD")
    counter = itertools.count()
    owed = defaultdict(int)
    for payer in enterprises:
        rows = []
        for _ in range(60):
            payee = rng.choice([e for e in enterprises if e != payer])
            cents = rng.randint(1, 3_000)
            owed[payee.pk] += cents
            owed[payer.pk] -= cents
            rows.append(
                {
                    "payee": payee.public_id,
                    "amount": f"{cents // 100}.{cents % 100:02d}",
                    "currency": "HKD",
                    "value_date": timezone.localdate().isoformat(),
                    "external_reference": f"C-{next(counter)}",
                }
            )
        obligations_create_bulk(payer=payer, rows=rows)
    before = {e.pk: balances_for(enterprise=e)["HKD"] for e in enterprises}
    first, second = batch_open(trigger="every 15 minutes"), batch_open(trigger="16:00 HKT")

    run_concurrently(lambda: batch_run(batch_id=first.pk), lambda: batch_run(batch_id=second.pk))

    batches = NettingBatch.objects.filter(pk__in=[first.pk, second.pk])
    assert {b.status for b in batches} == {BatchStatus.COMPLETED}
    assert sum(b.report["obligations"]["claimed"] for b in batches) == 360
    # Each obligation was in exactly one batch: pairs of both batches add up to the obligations.
    assert sum(NettingPair.objects.filter(batch__in=batches).values_list("obligation_count", flat=True)) == 360
    settled = Obligation.objects.filter(status=ObligationStatus.SETTLED)
    rolled = Obligation.objects.filter(status=ObligationStatus.PENDING)
    assert settled.count() + rolled.count() == 360
    # Balances moved by exactly the settled obligations, once.
    expected = defaultdict(int)
    for payer_id, payee_id, amount in settled.values_list("payer_id", "payee_id", "amount"):
        expected[payee_id] += amount
        expected[payer_id] -= amount
    for enterprise in enterprises:
        assert balances_for(enterprise=enterprise)["HKD"] - before[enterprise.pk] == expected[enterprise.pk]
    settled_nonzero = NettingPair.objects.filter(batch__in=batches, status="settled").exclude(a_owes=F("b_owes"))
    assert JournalEntry.objects.filter(kind=EntryKind.NETTING).count() == settled_nonzero.count()
    assert ledger_verify().ok


def test_a_cancel_racing_a_cutoff_either_cancels_or_settles(make_enterprise, mint):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "1000.00", "USD")
    obligations = []
    for i in range(40):
        result = obligations_create_bulk(
            payer=payer,
            rows=[
                {
                    "payee": payee.public_id,
                    "amount": "1.00",
                    "currency": "USD",
                    "value_date": timezone.localdate().isoformat(),
                    "external_reference": f"R-{i}",
                }
            ],
        )
        obligations.append(Obligation.objects.get(public_id=result.public_ids[0]))
    batch = batch_open()

    def cancel_all():
        cancelled = 0
        for obligation in obligations:
            try:
                obligation_cancel(obligation=obligation, payer=payer)
                cancelled += 1
            except Exception:  # the cut-off took it first
                pass
        return cancelled

    cancelled, _ = run_concurrently(cancel_all, lambda: batch_run(batch_id=batch.pk))

    statuses = list(Obligation.objects.values_list("status", flat=True))
    assert statuses.count(ObligationStatus.CANCELLED) == cancelled
    assert statuses.count(ObligationStatus.SETTLED) == 40 - cancelled
    assert balances_for(enterprise=payee)["USD"] == (40 - cancelled) * 100
    assert ledger_verify().ok

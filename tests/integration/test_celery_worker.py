"""A real Celery worker on Redis runs a ledger task against the test database."""

from __future__ import annotations

import pytest
from celery import Celery
from django.conf import settings

from settlement.ledger.selectors import wallet_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_worker_verifies_the_ledger_it_shares_with_us(celery_worker_process, make_enterprise, mint):
    proc, queue = celery_worker_process
    enterprise = make_enterprise()
    mint(enterprise, "1250.00", "CNH")
    # A client app with a result backend, so that we read what the worker returned.
    client = Celery(
        "itest", broker=settings.CELERY_BROKER_URL, backend=settings.CELERY_BROKER_URL, set_as_current=False
    )

    result = client.send_task("settlement.ledger_verify", queue=queue)
    summary = result.get(timeout=60)

    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    assert summary["ok"] is True
    assert summary["currencies"]["CNH"] == {"supply": 125_000, "reserve": 125_000, "clearing": 0}
    assert wallet_for(enterprise=enterprise, currency="CNH").balance == 125_000


def test_worker_reports_a_breach(celery_worker_process, make_enterprise, mint):
    from django.db import connection

    _, queue = celery_worker_process
    enterprise = make_enterprise()
    wallet = mint(enterprise, "10.00", "USD")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE settlement_account SET balance = balance + 1 WHERE id = %s", [wallet.id])
    client = Celery(
        "itest", broker=settings.CELERY_BROKER_URL, backend=settings.CELERY_BROKER_URL, set_as_current=False
    )

    summary = client.send_task("settlement.ledger_verify", queue=queue).get(timeout=60)

    assert summary["ok"] is False
    assert any(str(wallet.id) in breach for breach in summary["breaches"])

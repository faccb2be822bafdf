"""End to end with a real Celery worker on Redis: event_emit -> on commit -> broker -> worker -> receiver."""

from __future__ import annotations

import subprocess
import time

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app
from corporates.models import DeliveryStatus, WebhookDelivery
from corporates.webhooks import event_emit, webhook_endpoint_create, webhook_signature_verify
from tests.api.test_webhooks import Receiver
from tests.processes import celery_worker_start, worker_environment

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    """`celery -A config worker` on the default queue, reading the test database."""
    if connection.vendor != "postgresql" or settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("needs PostgreSQL and a real broker (make test)")
    # Messages left by earlier runs point at rows that no longer exist; drop them.
    app.control.purge()
    proc = celery_worker_start("default", worker_environment())
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_committed_event_is_delivered_by_the_worker(worker, make_enterprise):
    enterprise = make_enterprise()
    with Receiver(statuses=[200]) as receiver:
        endpoint = webhook_endpoint_create(
            enterprise=enterprise, url=receiver.url, event_types=["redemption.*"], created_by=None
        )
        # Outside a transaction event_emit is its own; on commit it queues the task on Redis.
        event = event_emit(enterprise=enterprise, type="redemption.paid", data={"id": "red_1"})

        deadline = time.monotonic() + 90
        delivery = WebhookDelivery.objects.get(event=event)
        while delivery.status == DeliveryStatus.PENDING and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
            time.sleep(0.25)
            delivery.refresh_from_db()

        assert delivery.status == DeliveryStatus.SUCCEEDED
        assert delivery.attempts.get().status_code == 200
        request = receiver.requests[0]
        assert webhook_signature_verify(
            secret=endpoint.secret, header=request["headers"]["Harbourline-Signature"], body=request["body"]
        )

"""Idempotency-Key on POST: required, replayed, refused when reused, executed once under concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from corporates.api.idempotency import idempotency_records_purge
from corporates.models import IdempotencyRecord, WebhookEndpoint

ENDPOINT = {"url": "https://erp.example.com/hooks", "event_types": ["*"]}


@pytest.mark.django_db
def test_post_without_key_is_refused(client_a):
    response = client_a.post("/api/v1/webhook-endpoints", ENDPOINT, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "idempotency_key_required"
    assert body["errors"][0]["field"] == "Idempotency-Key"
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_invalid_key_is_refused(client_a):
    response = client_a.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="has space")
    assert response.json()["code"] == "idempotency_key_invalid"


@pytest.mark.django_db
def test_repeat_with_same_body_replays_the_first_response(client_a):
    first = client_a.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client_a.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert again.json() == first.json()
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_refused(client_a):
    client_a.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    other = {**ENDPOINT, "url": "https://erp.example.com/other"}
    response = client_a.post("/api/v1/webhook-endpoints", other, format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.django_db
def test_errors_are_replayed_too_and_keys_are_per_enterprise(client_a, make_enterprise, make_client):
    bad = {"url": "ftp://nope", "event_types": ["*"]}
    first = client_a.post("/api/v1/webhook-endpoints", bad, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    again = client_a.post("/api/v1/webhook-endpoints", bad, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert first.status_code == again.status_code == 422
    assert again["Content-Type"] == "application/problem+json"
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and first.json()["code"] == "webhook_url_invalid"

    # Another enterprise using the same key string is a different request altogether.
    other = make_client(make_enterprise())
    response = other.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert response.status_code == 201 and not response.has_header("Idempotent-Replayed")


@pytest.mark.django_db
def test_the_body_hash_ignores_key_order_and_whitespace(client_a):
    client_a.generic(
        "POST", "/api/v1/webhook-endpoints", '{"url": "https://a.example.com/h", "event_types": ["*"]}',
        content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-4",
    )  # fmt: skip
    replay = client_a.generic(
        "POST", "/api/v1/webhook-endpoints", '{"event_types":["*"],"url":"https://a.example.com/h"}',
        content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-4",
    )  # fmt: skip
    assert replay["Idempotent-Replayed"] == "true"


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_execute_once(make_enterprise, make_key):
    enterprise = make_enterprise()
    secret = make_key(enterprise)
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    results: list[tuple[int, dict, bool]] = []
    lock = threading.Lock()

    def call() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        try:
            barrier.wait()
            response = client.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="race-1")
            with lock:
                results.append((response.status_code, response.json(), response.has_header("Idempotent-Replayed")))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert WebhookEndpoint.objects.filter(enterprise=enterprise).count() == 1
    assert IdempotencyRecord.objects.filter(enterprise=enterprise, key="race-1").count() == 1
    statuses = sorted(status for status, _, _ in results)
    assert len(results) == threads_n
    # Exactly one executed (201, not replayed); the others replayed it or were
    # told it was still running.
    executed = [r for r in results if r[0] == 201 and not r[2]]
    assert len(executed) == 1
    for status, body, replayed in results:
        assert status in {201, 409}, statuses
        if status == 201:
            assert body["id"] == executed[0][1]["id"]
        else:
            assert body["code"] == "idempotency_request_in_progress"


@pytest.mark.django_db
def test_a_request_abandoned_in_progress_is_taken_over_by_the_same_request_only(client_a, enterprise, settings):
    client_a.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="k-crash")
    record = IdempotencyRecord.objects.get(key="k-crash")
    WebhookEndpoint.objects.all().delete()
    # As if the process died mid-request, long ago.
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status="in_progress", response_body=None, created_at=timezone.now() - timedelta(minutes=11)
    )
    other = {**ENDPOINT, "url": "https://erp.example.com/other"}
    refused = client_a.post("/api/v1/webhook-endpoints", other, format="json", HTTP_IDEMPOTENCY_KEY="k-crash")
    assert refused.json()["code"] == "idempotency_key_reused"

    retried = client_a.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="k-crash")
    assert retried.status_code == 201 and not retried.has_header("Idempotent-Replayed")
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.django_db
def test_a_recent_in_progress_request_is_not_taken_over(client_a):
    client_a.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="k-busy")
    IdempotencyRecord.objects.filter(key="k-busy").update(status="in_progress")
    response = client_a.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="k-busy")
    assert response.status_code == 409 and response.json()["code"] == "idempotency_request_in_progress"
    assert response["Retry-After"] == "1"


@pytest.mark.django_db
def test_old_keys_are_purged(client_a, settings):
    client_a.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="k-old")
    assert idempotency_records_purge(now=timezone.now()) == 0
    assert idempotency_records_purge(now=timezone.now() + settings.IDEMPOTENCY_KEY_TTL + timedelta(seconds=1)) == 1
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_a_request_that_did_not_validate_leaves_the_key_free(client_a):
    invalid = client_a.post(
        "/api/v1/webhook-endpoints", {"url": "https://a.example.com/h"}, format="json", HTTP_IDEMPOTENCY_KEY="k-fix"
    )
    assert invalid.status_code == 400

    fixed = client_a.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="k-fix")

    assert fixed.status_code == 201 and not fixed.has_header("Idempotent-Replayed")


@pytest.mark.django_db(transaction=True)
def test_a_successful_post_claims_executes_and_completes_in_one_transaction(make_enterprise, make_client):
    # One commit per POST (corporates/api/idempotency.py): the claim, the
    # operation and the stored answer share one transaction, committed
    # synchronously like any money-moving commit.
    from django.test.utils import CaptureQueriesContext

    client = make_client(make_enterprise())
    client.get("/api/v1/me")  # the key's last_used_at write (at most once a minute) happens here
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/api/v1/webhook-endpoints", ENDPOINT, format="json", HTTP_IDEMPOTENCY_KEY="k-once")

    assert response.status_code == 201
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if "synchronous_commit" in sql]
    begins = [i for i, sql in enumerate(statements) if sql == "BEGIN"]
    assert len(begins) == 1, statements
    claim = next(i for i, sql in enumerate(statements) if "INTO corporates_idempotencyrecord" in sql)
    completion = next(i for i, sql in enumerate(statements) if sql.startswith('UPDATE "corporates_idempotencyrecord"'))
    assert begins[0] < claim < completion
    record = IdempotencyRecord.objects.get(key="k-once")
    assert record.status == "completed" and record.response_status == 201
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_refused_post_is_rolled_back_then_recorded_by_a_committed_claim(make_enterprise, make_client):
    # A refusal undoes its one-transaction run entirely, then runs again behind
    # a claim of its own: the refusal is stored and replayed, nothing else kept.
    client = make_client(make_enterprise())
    bad = {"url": "ftp://nope", "event_types": ["*"]}
    first = client.post("/api/v1/webhook-endpoints", bad, format="json", HTTP_IDEMPOTENCY_KEY="k-refused")
    again = client.post("/api/v1/webhook-endpoints", bad, format="json", HTTP_IDEMPOTENCY_KEY="k-refused")

    assert first.status_code == again.status_code and 400 < first.status_code < 500
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert IdempotencyRecord.objects.filter(key="k-refused").count() == 1
    assert not WebhookEndpoint.objects.exists()

"""Webhook writes need the ``webhooks`` scope (and an admin behind the key); reads stay ``read``."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from corporates.api_keys import api_key_create
from corporates.models import MemberRole, WebhookEndpoint
from corporates.webhooks import event_emit, webhook_endpoint_create
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

URL = "https://erp.example.com/hooks"


@pytest.fixture
def endpoint(enterprise) -> WebhookEndpoint:
    return webhook_endpoint_create(enterprise=enterprise, url=URL, event_types=["*"], created_by=None)


def client_with(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_read_only_key_reads_webhooks_but_writes_none(enterprise, endpoint, make_client):
    read_only = make_client(enterprise, ["read"])
    event = event_emit(enterprise=enterprise, type="payment.settled", data={"x": 1})

    assert read_only.get("/api/v1/webhook-endpoints").status_code == 200
    assert read_only.get(f"/api/v1/webhook-endpoints/{endpoint.public_id}").status_code == 200
    assert read_only.get(f"/api/v1/events/{event.public_id}").status_code == 200
    writes = [
        read_only.post("/api/v1/webhook-endpoints", {"url": URL, "event_types": ["*"]}, format="json",
                       HTTP_IDEMPOTENCY_KEY="w-1"),
        read_only.delete(f"/api/v1/webhook-endpoints/{endpoint.public_id}"),
        read_only.post(f"/api/v1/events/{event.public_id}/resend", {}, format="json", HTTP_IDEMPOTENCY_KEY="w-2"),
    ]  # fmt: skip
    for response in writes:
        assert response.status_code == 403
        assert response["Content-Type"].startswith("application/problem+json")
        assert response.json()["code"] == "insufficient_scope"
        assert "'webhooks'" in response.json()["detail"]
    assert WebhookEndpoint.objects.filter(enterprise=enterprise, deleted_at__isnull=True).count() == 1
    assert event.deliveries.count() == 1


def test_a_webhooks_key_manages_endpoints(enterprise, endpoint, make_client, django_capture_on_commit_callbacks):
    client = make_client(enterprise, ["read", "webhooks"])
    event = event_emit(enterprise=enterprise, type="payment.settled", data={"x": 1})

    created = client.post(
        "/api/v1/webhook-endpoints", {"url": URL, "event_types": ["*"]}, format="json", HTTP_IDEMPOTENCY_KEY="w-1"
    )
    with django_capture_on_commit_callbacks(execute=False):
        resent = client.post(f"/api/v1/events/{event.public_id}/resend", {}, format="json", HTTP_IDEMPOTENCY_KEY="w-2")
    deleted = client.delete(f"/api/v1/webhook-endpoints/{endpoint.public_id}")

    assert (created.status_code, resent.status_code, deleted.status_code) == (201, 202, 204)


def test_a_key_whose_creator_is_no_longer_an_admin_manages_no_webhooks(enterprise, endpoint):
    admin = MembershipFactory(enterprise=enterprise, role=MemberRole.ADMIN)
    secret = api_key_create(
        enterprise=enterprise, name="erp", scopes=["read", "webhooks"], created_by=admin.user
    ).secret
    client = client_with(secret)
    created = client.post(
        "/api/v1/webhook-endpoints", {"url": URL, "event_types": ["*"]}, format="json", HTTP_IDEMPOTENCY_KEY="w-1"
    )
    assert created.status_code == 201, created.content
    assert WebhookEndpoint.objects.get(public_id=created.json()["id"]).created_by == admin.user

    admin.role = MemberRole.VIEWER
    admin.save(update_fields=["role"])
    refused = client.delete(f"/api/v1/webhook-endpoints/{endpoint.public_id}")
    assert refused.status_code == 403 and refused.json()["code"] == "member_not_admin"


def test_the_portal_offers_the_webhooks_scope():
    from corporates.forms import ApiKeyForm

    assert ("webhooks", "Webhooks") in ApiKeyForm().fields["scopes"].choices

"""The back office sees API keys and webhook logs, revokes keys and re-sends events, through the services."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from corporates.api_keys import api_key_create
from corporates.models import ApiKey, WebhookDelivery
from corporates.webhooks import event_emit, webhook_endpoint_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["apikey", "webhookendpoint", "webhookevent", "webhookdelivery"])
def test_changelists_render_without_secrets(admin_client, enterprise, model):
    created = api_key_create(enterprise=enterprise, name="ERP", scopes=["read"], created_by=None)
    endpoint = webhook_endpoint_create(
        enterprise=enterprise, url="https://erp.example.com/h", event_types=["*"], created_by=None
    )
    event_emit(enterprise=enterprise, type="test.created", data={"n": 1})

    response = admin_client.get(reverse(f"admin:corporates_{model}_changelist"))

    assert response.status_code == 200
    html = response.content.decode()
    assert created.secret not in html and created.api_key.secret_hash not in html and endpoint.secret not in html


def test_revoking_a_key_in_admin_locks_it_out(admin_client, enterprise):
    created = api_key_create(enterprise=enterprise, name="leaked", scopes=["read"], created_by=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.secret}")
    assert client.get("/api/v1/me").status_code == 200

    admin_client.post(
        reverse("admin:corporates_apikey_changelist"),
        {"action": "revoke", "_selected_action": [created.api_key.pk]},
    )

    assert ApiKey.objects.get(pk=created.api_key.pk).revoked_at is not None
    assert client.get("/api/v1/me").json()["code"] == "api_key_revoked"


def test_resending_from_admin_creates_a_new_delivery(admin_client, enterprise):
    webhook_endpoint_create(enterprise=enterprise, url="https://erp.example.com/h", event_types=["*"], created_by=None)
    event = event_emit(enterprise=enterprise, type="test.created", data={})
    first = WebhookDelivery.objects.get(event=event)

    admin_client.post(
        reverse("admin:corporates_webhookdelivery_changelist"),
        {"action": "resend", "_selected_action": [first.pk]},
    )

    assert WebhookDelivery.objects.filter(event=event, is_resend=True).count() == 1
    detail = admin_client.get(reverse("admin:corporates_webhookdelivery_change", args=[first.pk]))
    assert detail.status_code == 200

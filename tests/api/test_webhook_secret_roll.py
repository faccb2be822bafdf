"""Rolling a webhook endpoint's signing secret: the previous one signs beside it until it expires."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from config.errors import DomainError
from corporates.models import MemberRole, WebhookEndpoint
from corporates.webhooks import (
    SIGNATURE_HEADER,
    WebhookEndpointDeleted,
    WebhookSecretOverlapInvalid,
    webhook_endpoint_delete,
    webhook_endpoint_secret_roll,
    webhook_signature,
    webhook_signature_verify,
)
from tests.api.test_webhooks import _endpoint, emit, receiver  # noqa: F401 - fixtures
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def delivered(receiver, emit, enterprise):  # noqa: F811 - the imported fixtures
    """Emit one event; return the received (header, body)."""
    emit(enterprise, "payment.settled", {"n": len(receiver.requests)})
    request = receiver.requests[-1]
    return request["headers"][SIGNATURE_HEADER], request["body"]


def test_the_previous_secret_signs_beside_the_new_one_until_it_expires(enterprise, receiver, emit):  # noqa: F811
    endpoint = _endpoint(enterprise, receiver.url)
    old = endpoint.secret

    rolled = webhook_endpoint_secret_roll(endpoint=endpoint, rolled_by=None, overlap_hours=24)

    assert rolled.secret.startswith("whsec_") and rolled.secret != old
    assert rolled.previous_secret == old
    assert timedelta(hours=23, minutes=59) < rolled.previous_secret_expires_at - timezone.now() <= timedelta(hours=24)
    header, body = delivered(receiver, emit, enterprise)
    assert header.count("v1=") == 2
    assert webhook_signature_verify(secret=rolled.secret, header=header, body=body)
    assert webhook_signature_verify(secret=old, header=header, body=body)  # a receiver not yet switched

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    header, body = delivered(receiver, emit, enterprise)
    assert header.count("v1=") == 1
    assert webhook_signature_verify(secret=rolled.secret, header=header, body=body)
    assert not webhook_signature_verify(secret=old, header=header, body=body)


def test_a_leaked_secret_stops_at_once_and_a_second_roll_drops_the_oldest(enterprise, receiver, emit):  # noqa: F811
    endpoint = _endpoint(enterprise, receiver.url)
    first = endpoint.secret
    second = webhook_endpoint_secret_roll(endpoint=endpoint, rolled_by=None).secret
    third = webhook_endpoint_secret_roll(endpoint=endpoint, rolled_by=None).secret

    header, body = delivered(receiver, emit, enterprise)
    assert [webhook_signature_verify(secret=s, header=header, body=body) for s in (first, second, third)] == [
        False,
        True,
        True,
    ]

    leaked = webhook_endpoint_secret_roll(endpoint=endpoint, rolled_by=None, overlap_hours=0)
    assert (leaked.previous_secret, leaked.previous_secret_expires_at) == ("", None)
    header, body = delivered(receiver, emit, enterprise)
    assert [webhook_signature_verify(secret=s, header=header, body=body) for s in (third, leaked.secret)] == [
        False,
        True,
    ]


@pytest.mark.parametrize("overlap", [-1, 169, True, "24"])
def test_an_overlap_outside_a_week_is_refused(enterprise, overlap):
    endpoint = _endpoint(enterprise, "https://hooks.example.com/x")
    with pytest.raises(WebhookSecretOverlapInvalid):
        webhook_endpoint_secret_roll(endpoint=endpoint, rolled_by=None, overlap_hours=overlap)
    endpoint.refresh_from_db()
    assert endpoint.previous_secret == ""


def test_only_an_admin_rolls_and_never_a_deleted_endpoint(enterprise):
    endpoint = _endpoint(enterprise, "https://hooks.example.com/x")
    maker = MembershipFactory(enterprise=enterprise, role=MemberRole.MAKER).user
    with pytest.raises(DomainError):
        webhook_endpoint_secret_roll(endpoint=endpoint, rolled_by=maker)
    webhook_endpoint_delete(endpoint=endpoint, deleted_by=None)
    with pytest.raises(WebhookEndpointDeleted):
        webhook_endpoint_secret_roll(endpoint=endpoint, rolled_by=None)


def test_a_receiver_accepts_any_v1_and_ignores_malformed_parts():
    body = b"{}"
    header = webhook_signature(secret=["whsec_new", "whsec_old"], timestamp=1700000000, body=body)
    for secret in ("whsec_new", "whsec_old"):
        assert webhook_signature_verify(secret=secret, header=header, body=body, now=1700000000)
    assert not webhook_signature_verify(secret="whsec_other", header=header, body=body, now=1700000000)
    assert webhook_signature_verify(secret="whsec_old", header=header + ",junk", body=body, now=1700000000)
    assert not webhook_signature_verify(secret="whsec_old", header="v1=abc", body=body, now=1700000000)


def test_the_api_rolls_once_per_idempotency_key(enterprise, client_a, make_client, make_enterprise):
    created = client_a.post(
        "/api/v1/webhook-endpoints", {"url": "https://hooks.example.com/x", "event_types": ["*"]}, format="json",
        HTTP_IDEMPOTENCY_KEY="we-1",
    ).json()  # fmt: skip
    path = f"/api/v1/webhook-endpoints/{created['id']}/roll-secret"

    rolled = client_a.post(path, {"overlap_hours": 2}, format="json", HTTP_IDEMPOTENCY_KEY="roll-1")
    again = client_a.post(path, {"overlap_hours": 2}, format="json", HTTP_IDEMPOTENCY_KEY="roll-1")

    assert rolled.status_code == 200, rolled.content
    body = rolled.json()
    assert body["id"] == created["id"] and body["secret"] != created["secret"]
    assert body["previous_secret_expires_at"] is not None
    assert again.json() == body and again["Idempotent-Replayed"] == "true"
    assert WebhookEndpoint.objects.get(public_id=created["id"]).secret == body["secret"]  # rolled once
    assert "secret" not in client_a.get(f"/api/v1/webhook-endpoints/{created['id']}").json()

    refused = client_a.post(path, {"overlap_hours": 500}, format="json", HTTP_IDEMPOTENCY_KEY="roll-2")
    assert refused.status_code == 422 and refused.json()["code"] == "webhook_secret_overlap_invalid"
    read_only = make_client(enterprise, ["read"]).post(path, {}, format="json", HTTP_IDEMPOTENCY_KEY="roll-3")
    assert read_only.status_code == 403 and read_only.json()["code"] == "insufficient_scope"
    stranger = make_client(make_enterprise()).post(path, {}, format="json", HTTP_IDEMPOTENCY_KEY="roll-4")
    assert stranger.status_code == 404

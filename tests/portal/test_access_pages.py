"""Portal pages over other services: API keys, webhook endpoints, bank accounts. Admins manage; tenants are apart."""

from __future__ import annotations

import pytest
from django.urls import reverse

from corporates.api_keys import api_key_authenticate, api_key_create
from corporates.models import ApiKey, BankAccount, WebhookEndpoint
from corporates.webhooks import event_emit, webhook_endpoint_create

pytestmark = pytest.mark.django_db

API_KEYS = reverse("corporates:api_keys")
WEBHOOKS = reverse("corporates:webhooks")
BANK_ACCOUNTS = reverse("corporates:bank_accounts")


def test_an_admin_creates_a_key_and_sees_its_secret_once(make_member, portal_client):
    admin = make_member("admin")
    client = portal_client(admin)

    response = client.post(API_KEYS, {"name": "SAP production", "scopes": ["read", "payments"]}, follow=True)

    secret = response.content.decode().split('data-testid="secret-once">')[1].split("<")[0]
    key = api_key_authenticate(raw_key=secret)
    assert (key.enterprise, key.name, key.scopes) == (admin.enterprise, "SAP production", ["payments", "read"])
    assert key.created_by == admin.user
    page = client.get(API_KEYS).content.decode()
    assert secret not in page
    assert f"hlk_{key.prefix}_" in page


def test_a_key_needs_a_scope(make_member, portal_client):
    response = portal_client(make_member("admin")).post(API_KEYS, {"name": "no scope"})
    assert response.status_code == 400
    assert not ApiKey.objects.exists()


def test_an_admin_revokes_a_key(make_member, portal_client):
    admin = make_member("admin")
    created = api_key_create(enterprise=admin.enterprise, name="k", scopes=["read"], created_by=admin.user)
    client = portal_client(admin)
    client.post(reverse("corporates:api_key_revoke", args=[created.api_key.public_id]))
    created.api_key.refresh_from_db()
    assert created.api_key.revoked_at is not None


@pytest.mark.parametrize("role", ["maker", "checker", "viewer"])
def test_only_admins_reach_keys_and_webhooks(make_member, portal_client, role):
    admin = make_member("admin")
    created = api_key_create(enterprise=admin.enterprise, name="k", scopes=["read"], created_by=admin.user)
    client = portal_client(make_member(role))
    refused = client.get(API_KEYS)
    assert refused.status_code == 403
    assert b"Your role does not allow this" in refused.content
    assert client.post(API_KEYS, {"name": "x", "scopes": ["read"]}).status_code == 403
    assert client.post(reverse("corporates:api_key_revoke", args=[created.api_key.public_id])).status_code == 403
    assert client.get(WEBHOOKS).status_code == 403
    assert client.post(WEBHOOKS, {"url": "https://erp.example/hook", "event_types": "*"}).status_code == 403
    roll = reverse("corporates:webhook_endpoint_roll_secret", args=["we_x"])
    assert client.post(roll).status_code == 403
    created.api_key.refresh_from_db()
    assert created.api_key.revoked_at is None
    assert ApiKey.objects.count() == 1
    assert not WebhookEndpoint.objects.exists()


def test_another_enterprises_key_and_endpoint_are_not_found(make_member, make_enterprise, portal_client):
    stranger = make_member("admin", of=make_enterprise())
    key = api_key_create(enterprise=stranger.enterprise, name="k", scopes=["read"], created_by=stranger.user)
    endpoint = webhook_endpoint_create(
        enterprise=stranger.enterprise, url="https://erp.example/hook", event_types=["*"], created_by=stranger.user
    )
    client = portal_client(make_member("admin"))
    assert client.post(reverse("corporates:api_key_revoke", args=[key.api_key.public_id])).status_code == 404
    assert client.post(reverse("corporates:webhook_endpoint_delete", args=[endpoint.public_id])).status_code == 404
    assert client.post(reverse("corporates:webhook_endpoint_roll_secret", args=[endpoint.public_id])).status_code == 404
    assert key.api_key.public_id not in client.get(API_KEYS).content.decode()


def test_an_admin_registers_an_endpoint_sees_its_secret_once_and_resends(make_member, portal_client, settings):
    admin = make_member("admin")
    client = portal_client(admin)

    response = client.post(
        WEBHOOKS,
        {"url": "https://erp.example/hook", "event_types": "fx.*, payment.settled", "description": "ERP"},
        follow=True,
    )

    endpoint = WebhookEndpoint.objects.get(enterprise=admin.enterprise)
    assert endpoint.event_types == ["fx.*", "payment.settled"]
    assert f'data-testid="secret-once">{endpoint.secret}<' in response.content.decode()
    assert endpoint.secret not in client.get(WEBHOOKS).content.decode()

    event = event_emit(enterprise=admin.enterprise, type="fx.quote.accepted", data={"quote": "fxq_1"})
    client.post(reverse("corporates:webhook_event_resend", args=[event.public_id]))
    assert event.deliveries.filter(is_resend=True).count() == 1

    old = endpoint.secret
    rolled = client.post(reverse("corporates:webhook_endpoint_roll_secret", args=[endpoint.public_id]), follow=True)
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    page = rolled.content.decode()
    assert f'data-testid="secret-once">{endpoint.secret}<' in page and "previous one keeps signing" in page
    assert endpoint.secret not in client.get(WEBHOOKS).content.decode()

    client.post(reverse("corporates:webhook_endpoint_delete", args=[endpoint.public_id]))
    endpoint.refresh_from_db()
    assert endpoint.deleted_at is not None


def test_an_admin_registers_a_bank_account_and_everyone_sees_it_masked(make_member, portal_client):
    admin, viewer = make_member("admin"), make_member("viewer")
    response = portal_client(admin).post(
        BANK_ACCOUNTS,
        {
            "holder_name": "Victoria Harbour Trading Ltd",
            "bank_name": "HSBC",
            "account_number": "004-123-456789-001",
            "currency": "HKD",
        },
    )
    assert response.status_code == 302
    account = BankAccount.objects.get(enterprise=admin.enterprise)
    assert (account.account_number, account.status) == ("004123456789001", "pending")

    page = portal_client(viewer).get(BANK_ACCOUNTS).content.decode()
    assert account.masked_number in page
    assert "004123456789001" not in page
    assert "Register an account" not in page


@pytest.mark.parametrize("role", ["maker", "checker", "viewer"])
def test_only_an_admin_registers_a_bank_account(make_member, portal_client, role):
    response = portal_client(make_member(role)).post(
        BANK_ACCOUNTS,
        {"holder_name": "X Ltd", "bank_name": "HSBC", "account_number": "004123456789001", "currency": "HKD"},
    )
    assert response.status_code == 403
    assert not BankAccount.objects.exists()


def test_a_bad_account_number_is_a_form_error(make_member, portal_client):
    response = portal_client(make_member("admin")).post(
        BANK_ACCOUNTS,
        {"holder_name": "X Ltd", "bank_name": "HSBC", "account_number": "GB00WEST12345698765432", "currency": "USD"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors
    assert not BankAccount.objects.exists()

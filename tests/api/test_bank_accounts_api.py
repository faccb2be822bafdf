"""/api/v1/bank-accounts: list, register (idempotent, redemptions scope), retrieve; masked numbers."""

from __future__ import annotations

import pytest

from corporates.models import BankAccount, BankAccountStatus

pytestmark = pytest.mark.django_db

ACCOUNT = {"holder_name": "Acme Trading Ltd", "bank_name": "Harbour Bank", "account_number": "004-123-456789-001",
           "currency": "HKD"}  # fmt: skip


def test_register_list_and_retrieve(enterprise, client_a):
    created = client_a.post("/api/v1/bank-accounts", ACCOUNT, format="json", HTTP_IDEMPOTENCY_KEY="ba-1")

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["id"].startswith("ba_") and body["status"] == BankAccountStatus.PENDING
    assert body["account_number"].endswith("9001") and "123456789" not in body["account_number"]
    assert BankAccount.objects.get(public_id=body["id"]).enterprise == enterprise

    assert [row["id"] for row in client_a.get("/api/v1/bank-accounts").json()["results"]] == [body["id"]]
    assert client_a.get(f"/api/v1/bank-accounts/{body['id']}").json() == body
    replay = client_a.post("/api/v1/bank-accounts", ACCOUNT, format="json", HTTP_IDEMPOTENCY_KEY="ba-1")
    assert replay["Idempotent-Replayed"] == "true" and BankAccount.objects.count() == 1


def test_refusals_are_problems_naming_the_field(client_a):
    bad_iban = {**ACCOUNT, "account_number": "GB82 WEST 1234 5698 7654 33"}
    response = client_a.post("/api/v1/bank-accounts", bad_iban, format="json", HTTP_IDEMPOTENCY_KEY="ba-2")
    assert response.status_code == 400 and response.json()["code"] == "invalid_iban"

    bad_number = {**ACCOUNT, "account_number": "!!"}
    response = client_a.post("/api/v1/bank-accounts", bad_number, format="json", HTTP_IDEMPOTENCY_KEY="ba-3")
    assert response.json()["errors"] == [
        {"field": "account_number", "code": "invalid_bank_account", "detail": response.json()["detail"]}
    ]

    response = client_a.post(
        "/api/v1/bank-accounts", {**ACCOUNT, "currency": "EUR"}, format="json", HTTP_IDEMPOTENCY_KEY="ba-4"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "currency"


def test_registering_needs_the_redemptions_scope(enterprise, make_client):
    client = make_client(enterprise, scopes=["read", "payments"])
    response = client.post("/api/v1/bank-accounts", ACCOUNT, format="json", HTTP_IDEMPOTENCY_KEY="ba-5")
    assert response.status_code == 403 and response.json()["code"] == "insufficient_scope"
    assert client.get("/api/v1/bank-accounts").status_code == 200

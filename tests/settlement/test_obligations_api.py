"""The ERP API of obligations and netting: create one and in bulk, list, cancel, preview, batches, CSV."""

from __future__ import annotations

import pytest
from django.utils import timezone

from settlement.netting.services import batch_open, batch_run
from settlement.obligations.models import Obligation, ObligationStatus
from tests.api.conftest import _api_settings, make_client, make_key  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def today() -> str:
    return timezone.localdate().isoformat()


def post(client, path, body, key="k-1"):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.fixture
def trio(make_enterprise, make_client, mint):  # noqa: F811 - the imported fixture
    a, b, c = make_enterprise(), make_enterprise(), make_enterprise()
    mint(a, "500.00", "HKD")
    return {"a": a, "b": b, "c": c, "client_a": make_client(a), "client_b": make_client(b), "client_c": make_client(c)}


def test_create_one_and_replay_it(trio):
    body = {
        "payee": trio["b"].public_id,
        "amount": {"amount": "120.50", "currency": "HKD"},
        "value_date": today(),
        "external_reference": "INV-API-1",
    }
    first = post(trio["client_a"], "/api/v1/obligations", body)
    again = post(trio["client_a"], "/api/v1/obligations", body)

    assert first.status_code == 201, first.content
    assert first.json()["amount"] == {"amount": "120.50", "currency": "HKD"}
    assert first.json()["status"] == "pending" and first.json()["payer"] == trio["a"].public_id
    assert again.json()["id"] == first.json()["id"]
    assert Obligation.objects.count() == 1


def test_a_refused_single_obligation_is_a_problem_with_its_code(trio):
    body = {
        "payee": trio["a"].public_id,
        "amount": {"amount": "1.00", "currency": "HKD"},
        "value_date": today(),
        "external_reference": "SELF",
    }
    response = post(trio["client_a"], "/api/v1/obligations", body)
    assert response.status_code == 422
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "payee_is_payer"


def test_bulk_all_or_nothing_with_every_rows_errors(trio):
    good = {"payee": trio["b"].public_id, "amount": "10.00", "currency": "USD", "value_date": today()}
    rows = [
        {**good, "external_reference": "B-1"},
        {**good, "payee": "ent_nobody", "external_reference": "B-2"},
        {**good, "amount": 3.5, "external_reference": "B-3"},
    ]
    refused = post(trio["client_a"], "/api/v1/obligations/bulk", {"obligations": rows}, key="bulk-1")

    assert refused.status_code == 422
    assert refused.json()["code"] == "obligations_invalid"
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        ("obligations.1.payee", "payee_unknown"),
        ("obligations.2.amount", "amount_not_string"),
    ]
    assert Obligation.objects.count() == 0

    accepted = post(
        trio["client_a"],
        "/api/v1/obligations/bulk",
        {"obligations": [rows[0], {**good, "external_reference": "B-4"}]},
        key="bulk-2",
    )
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["created"] == 2 and len(accepted.json()["ids"]) == 2


def test_both_sides_see_an_obligation_and_only_the_payer_cancels_it(trio):
    body = {"payee": trio["b"].public_id, "amount": {"amount": "5.00", "currency": "CNH"}, "value_date": today(),
            "external_reference": "SEE-1"}  # fmt: skip
    obligation_id = post(trio["client_a"], "/api/v1/obligations", body).json()["id"]

    incoming = trio["client_b"].get("/api/v1/obligations", {"direction": "incoming"}).json()["results"]
    assert [o["id"] for o in incoming] == [obligation_id]
    assert trio["client_c"].get(f"/api/v1/obligations/{obligation_id}").status_code == 404

    by_payee = post(trio["client_b"], f"/api/v1/obligations/{obligation_id}/cancel", {}, key="c-b")
    assert by_payee.status_code == 409 and by_payee.json()["code"] == "obligation_not_cancellable"
    by_payer = post(trio["client_a"], f"/api/v1/obligations/{obligation_id}/cancel", {}, key="c-a")
    assert by_payer.status_code == 200 and by_payer.json()["status"] == "cancelled"


def test_preview_then_the_batch_with_positions_and_csv(trio):
    for n, (payer, payee, amount) in enumerate([("a", "b", "100.00"), ("b", "a", "30.00")]):
        body = {"payee": trio[payee].public_id, "amount": {"amount": amount, "currency": "HKD"}, "value_date": today(),
                "external_reference": f"P-{n}"}  # fmt: skip
        assert post(trio[f"client_{payer}"], "/api/v1/obligations", body, key=f"p-{n}").status_code == 201

    preview = trio["client_a"].get("/api/v1/netting/preview").json()
    assert preview["counterparties"] == [
        {
            "counterparty": trio["b"].public_id,
            "currency": "HKD",
            "you_owe": {"amount": "100.00", "currency": "HKD"},
            "owed_to_you": {"amount": "30.00", "currency": "HKD"},
            "net": "-70.00",
            "obligations": 2,
        }
    ]

    batch = batch_run(batch_id=batch_open().pk)
    listed = trio["client_b"].get("/api/v1/netting/batches").json()["results"]
    assert [b["id"] for b in listed] == [batch.public_id]
    detail = trio["client_a"].get(f"/api/v1/netting/batches/{batch.public_id}").json()
    assert detail["status"] == "completed"
    assert detail["positions"] == [
        {
            "currency": "HKD",
            "owed": {"amount": "100.00", "currency": "HKD"},
            "owed_to_you": {"amount": "30.00", "currency": "HKD"},
            "paid_net": {"amount": "70.00", "currency": "HKD"},
            "received_net": {"amount": "0.00", "currency": "HKD"},
            "multilateral_net": "-70.00",
            "saved": {"amount": "30.00", "currency": "HKD"},
        }
    ]
    assert trio["client_c"].get(f"/api/v1/netting/batches/{batch.public_id}").status_code == 404
    assert trio["client_c"].get("/api/v1/netting/batches").json()["results"] == []

    csv_response = trio["client_b"].get(f"/api/v1/netting/batches/{batch.public_id}", HTTP_ACCEPT="text/csv")
    lines = b"".join(csv_response.streaming_content).decode().splitlines()
    assert lines[0].startswith("obligation,direction,counterparty")
    assert sorted(line.split(",")[1] for line in lines[1:]) == ["incoming", "outgoing"]
    assert all(o.status == ObligationStatus.SETTLED for o in Obligation.objects.all())

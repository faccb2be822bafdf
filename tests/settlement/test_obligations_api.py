"""The ERP API of obligations and netting: create one and in bulk, list, cancel, preview, batches, CSV."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from config.errors import DomainError
from corporates.api_keys import api_key_create
from corporates.models import MemberRole
from corporates.onboarding.limits import enterprise_limits_set
from corporates.services import enterprise_approve
from settlement.netting.services import batch_open, batch_run
from settlement.obligations.models import Obligation, ObligationStatus
from settlement.obligations.services import obligation_approve
from tests.api.conftest import _api_settings, make_client, make_key  # noqa: F401 - fixtures
from tests.factories import EnterpriseFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def today() -> str:
    return timezone.localdate().isoformat()


def make_enterprise_approved():
    return enterprise_approve(enterprise=EnterpriseFactory())


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


# --- approve: four eyes through the API ------------------------------------------------------------


@pytest.fixture
def above_threshold(make_enterprise):
    """A payer whose HKD approval threshold is 1,000.00, two admins with keys, and a payee."""
    payer, payee = make_enterprise(), make_enterprise()
    enterprise_limits_set(
        enterprise=payer, currency="HKD", single_payment="5000.00", daily_redemption=None, approval_threshold="1000.00"
    )

    def client_of(user, scopes=("read", "payments")):
        secret = api_key_create(enterprise=payer, name="erp", scopes=list(scopes), created_by=user).secret
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    alice = MembershipFactory(enterprise=payer, role=MemberRole.ADMIN).user
    bob = MembershipFactory(enterprise=payer, role=MemberRole.ADMIN).user
    return {"payer": payer, "payee": payee, "alice": alice, "bob": bob, "client_of": client_of}


def _big(client, payee, reference="BIG-1"):
    body = {"payee": payee.public_id, "amount": {"amount": "1500.00", "currency": "HKD"}, "value_date": today(),
            "external_reference": reference}  # fmt: skip
    response = post(client, "/api/v1/obligations", body, key=f"make-{reference}")
    assert response.status_code == 201, response.content
    assert response.json()["needs_approval"] is True
    return response.json()["id"]


def test_a_second_key_of_the_same_admin_cannot_approve(above_threshold):
    t = above_threshold
    maker_key, second_key = t["client_of"](t["alice"]), t["client_of"](t["alice"])
    obligation_id = _big(maker_key, t["payee"])
    assert Obligation.objects.get(public_id=obligation_id).created_by == t["alice"]

    for client, key in ((maker_key, "a-1"), (second_key, "a-2")):
        refused = post(client, f"/api/v1/obligations/{obligation_id}/approve", {}, key=key)
        assert refused.status_code == 403 and refused.json()["code"] == "checker_is_maker"
    assert Obligation.objects.get(public_id=obligation_id).needs_approval


def test_another_persons_key_approves_once_and_replays(above_threshold):
    t = above_threshold
    obligation_id = _big(t["client_of"](t["alice"]), t["payee"])
    approver = t["client_of"](t["bob"])

    first = post(approver, f"/api/v1/obligations/{obligation_id}/approve", {}, key="ap-1")
    again = post(approver, f"/api/v1/obligations/{obligation_id}/approve", {}, key="ap-1")
    later = post(approver, f"/api/v1/obligations/{obligation_id}/approve", {}, key="ap-2")

    assert first.status_code == 200, first.content
    assert first.json()["needs_approval"] is False and first.json()["approved_at"]
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert later.status_code == 409 and later.json()["code"] == "obligation_not_approvable"
    assert Obligation.objects.get(public_id=obligation_id).approved_by == t["bob"]


def test_approving_needs_the_payments_scope_and_a_known_person(above_threshold):
    t = above_threshold
    obligation_id = _big(t["client_of"](t["alice"]), t["payee"])
    read_only = t["client_of"](t["bob"], scopes=["read"])
    nobodys = t["client_of"](None, scopes=["read", "payments"])

    refused = post(read_only, f"/api/v1/obligations/{obligation_id}/approve", {}, key="s-1")
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    refused = post(nobodys, f"/api/v1/obligations/{obligation_id}/approve", {}, key="s-2")
    assert refused.status_code == 403 and refused.json()["code"] == "approver_unidentified"


def test_a_portal_user_cannot_approve_what_their_key_made(above_threshold):
    t = above_threshold
    obligation = Obligation.objects.get(public_id=_big(t["client_of"](t["alice"]), t["payee"]))
    with pytest.raises(DomainError) as refused:
        obligation_approve(obligation=obligation, approver=t["alice"])
    assert refused.value.code == "checker_is_maker"
    assert obligation_approve(obligation=obligation, approver=t["bob"]).approved_by == t["bob"]


def test_another_enterprises_obligation_is_not_found_and_the_payee_cannot_approve(
    above_threshold,
    make_client,  # noqa: F811 - the imported fixture
):
    t = above_threshold
    obligation_id = _big(t["client_of"](t["alice"]), t["payee"])

    stranger = post(make_client(make_enterprise_approved()), f"/api/v1/obligations/{obligation_id}/approve", {})
    assert stranger.status_code == 404
    payee = post(make_client(t["payee"]), f"/api/v1/obligations/{obligation_id}/approve", {}, key="p-1")
    assert payee.status_code == 403 and payee.json()["code"] == "role_not_permitted"
    assert Obligation.objects.get(public_id=obligation_id).needs_approval

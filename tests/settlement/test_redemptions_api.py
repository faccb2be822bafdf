"""The ERP API of mint and redeem: API keys, Idempotency-Key, problem details, tenancy."""

from __future__ import annotations

import itertools

import pytest
from rest_framework.test import APIClient

from corporates.api_keys import api_key_create
from corporates.models import ApiScope, MemberRole
from corporates.onboarding.limits import enterprise_limits_set
from settlement.redemptions.models import Redemption, RedemptionState
from tests.factories import MembershipFactory
from tests.settlement.mintredeem import *  # noqa: F403
from tests.settlement.mintredeem import Redeemer, assert_books_clean, minor

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
_keys = itertools.count(1)


@pytest.fixture(autouse=True)
def _generous_rate(settings):
    settings.API_KEY_RATE_LIMIT = "100000/min"


def api(enterprise, scopes=(ApiScope.READ, ApiScope.REDEMPTIONS), created_by=None) -> APIClient:
    created = api_key_create(
        enterprise=enterprise, name=f"erp {next(_keys)}", scopes=list(scopes), created_by=created_by
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.secret}")
    return client


def post(client: APIClient, path: str, body: dict | None = None, key: str | None = None):
    return client.post(path, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key or f"k-{next(_keys)}")


def test_deposit_instructions_name_the_custodian_and_the_enterprises_reference(make_enterprise):
    response = api(make_enterprise()).get("/api/v1/deposits/instructions")

    assert response.status_code == 200
    rows = response.json()["instructions"]
    assert [row["currency"] for row in rows] == ["HKD", "USD", "CNH"]
    assert all(row["reference"].startswith("HL") and row["account_number"] for row in rows)


def test_redeem_through_the_api_with_another_persons_key_approving(
    rails, redeemer, eager_tasks, django_capture_on_commit_callbacks
):
    party: Redeemer = redeemer()
    rails.fund(party.enterprise, "500.00")
    enterprise_limits_set(
        enterprise=party.enterprise,
        currency="HKD",
        single_payment=None,
        daily_redemption=None,
        approval_threshold="100",
    )
    # Four eyes across keys: the person behind a key is the admin who created it.
    first_admin, second_admin = (
        MembershipFactory(enterprise=party.enterprise, role=MemberRole.ADMIN).user for _ in range(2)
    )
    maker, same_person, checker = (
        api(party.enterprise, created_by=first_admin),
        api(party.enterprise, created_by=first_admin),
        api(party.enterprise, created_by=second_admin),
    )
    body = {"amount": {"amount": "150.00", "currency": "HKD"}, "bank_account": party.account("HKD").public_id}

    created = post(maker, "/api/v1/redemptions", body, key="redeem-1")
    replayed = post(maker, "/api/v1/redemptions", body, key="redeem-1")

    assert created.status_code == 201, created.json()
    red = created.json()
    assert red["state"] == "awaiting_approval" and red["amount"] == {"amount": "150.00", "currency": "HKD"}
    assert replayed.json()["id"] == red["id"] and Redemption.objects.count() == 1
    same_key = post(maker, f"/api/v1/redemptions/{red['id']}/approve")
    assert same_key.status_code == 403 and same_key.json()["code"] == "checker_is_maker"
    # Another key of the same admin is the same person: refused too.
    other_key_same_admin = post(same_person, f"/api/v1/redemptions/{red['id']}/approve")
    assert other_key_same_admin.status_code == 403 and other_key_same_admin.json()["code"] == "checker_is_maker"
    anonymous_key = post(api(party.enterprise), f"/api/v1/redemptions/{red['id']}/approve")
    assert anonymous_key.status_code == 403 and anonymous_key.json()["code"] == "approver_unidentified"
    with django_capture_on_commit_callbacks(execute=True):
        approved = post(checker, f"/api/v1/redemptions/{red['id']}/approve")
    assert approved.status_code == 200 and approved.json()["state"] == "processing"
    assert approved.json()["deadline_at"]
    rails.settle(Redemption.objects.get(public_id=red["id"]))
    shown = maker.get(f"/api/v1/redemptions/{red['id']}").json()
    assert shown["state"] == "paid" and shown["paid_at"]
    listed = maker.get("/api/v1/redemptions").json()
    assert [r["id"] for r in listed["results"]] == [red["id"]]
    assert maker.get("/api/v1/redemptions?state=paid").json()["results"][0]["id"] == red["id"]
    assert maker.get("/api/v1/redemptions?state=failed").json()["results"] == []
    reserves = {r["currency"]: r for r in maker.get("/api/v1/reserves").json()["reserves"]}
    assert reserves["HKD"]["tokens_outstanding"] == {"amount": "350.00", "currency": "HKD"}
    assert reserves["HKD"]["reserve_custodian"] == reserves["HKD"]["reserve_ledger"]
    assert reserves["HKD"]["backing_ratio"] == "1.0000"
    assert_books_clean()


def test_api_refusals_are_problem_details(rails, redeemer, make_enterprise):
    party: Redeemer = redeemer()
    rails.fund(party.enterprise, "10.00")
    client = api(party.enterprise)
    account = party.account("HKD").public_id

    too_much = post(
        client, "/api/v1/redemptions", {"amount": {"amount": "10.01", "currency": "HKD"}, "bank_account": account}
    )
    floaty = post(
        client, "/api/v1/redemptions", {"amount": {"amount": 5.5, "currency": "HKD"}, "bank_account": account}
    )
    someone_elses = Redeemer(make_enterprise()).account("HKD").public_id
    foreign = post(
        client, "/api/v1/redemptions", {"amount": {"amount": "1.00", "currency": "HKD"}, "bank_account": someone_elses}
    )
    read_only = post(
        api(party.enterprise, scopes=[ApiScope.READ]),
        "/api/v1/redemptions",
        {"amount": {"amount": "1.00", "currency": "HKD"}, "bank_account": account},
    )

    assert too_much.status_code == 422 and too_much.json()["code"] == "insufficient_funds"
    assert floaty.status_code == 400
    assert foreign.status_code == 404 and foreign.json()["code"] == "bank_account_not_found"
    assert read_only.status_code == 403
    assert Redemption.objects.count() == 0


def test_another_enterprises_redemption_does_not_exist(rails, redeemer):
    mine, theirs = redeemer(), redeemer()
    rails.fund(theirs.enterprise, "10.00")
    enterprise_limits_set(
        enterprise=theirs.enterprise, currency="HKD", single_payment=None, daily_redemption=None, approval_threshold="0"
    )
    body = {"amount": {"amount": "1.00", "currency": "HKD"}, "bank_account": theirs.account("HKD").public_id}
    red = post(api(theirs.enterprise), "/api/v1/redemptions", body).json()
    snoop = api(mine.enterprise)

    assert snoop.get(f"/api/v1/redemptions/{red['id']}").status_code == 404
    assert post(snoop, f"/api/v1/redemptions/{red['id']}/approve").status_code == 404
    assert post(snoop, f"/api/v1/redemptions/{red['id']}/cancel").status_code == 404
    cancelled = post(api(theirs.enterprise), f"/api/v1/redemptions/{red['id']}/cancel")
    assert cancelled.json()["state"] == RedemptionState.CANCELLED
    assert minor("10.00") == theirs.wallet()

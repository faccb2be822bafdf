"""Problem details for every failure, API-key authentication, scopes, and GET /me."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from config.api.exceptions import api_exception_handler, handler404, handler500
from config.errors import DomainError
from config.money import MoneyParseError
from corporates.api_keys import LAST_USED_RESOLUTION, api_key_authenticate, api_key_create, api_key_revoke
from corporates.models import ApiKey, MemberRole
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] == f"urn:harbourline:problem:{code}"
    assert "Traceback" not in response.content.decode()
    return body


# --- authentication ----------------------------------------------------------------


def test_no_key_is_401_with_bearer_challenge():
    response = APIClient().get("/api/v1/me")
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer nonsense", "api_key_invalid"),
        ("Bearer hlk_abcdefghij_" + "x" * 40, "api_key_invalid"),
        ("Bearer hlk__", "api_key_invalid"),
        ("Bearer a b", "authorization_malformed"),
    ],
)
def test_bad_keys_are_401(header, code, enterprise, make_key):
    make_key(enterprise)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_problem(client.get("/api/v1/me"), 401, code)


def test_a_key_of_the_right_prefix_but_wrong_secret_is_refused(enterprise, make_key):
    secret = make_key(enterprise)
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tampered}")
    assert_problem(client.get("/api/v1/me"), 401, "api_key_invalid")


def test_revoked_key_is_refused_at_once(enterprise, make_key):
    secret = make_key(enterprise)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/me").status_code == 200

    api_key_revoke(api_key=ApiKey.objects.get(enterprise=enterprise), revoked_by=None)

    assert_problem(client.get("/api/v1/me"), 401, "api_key_revoked")


def test_only_the_hash_is_stored_and_last_use_is_recorded(enterprise):
    created = api_key_create(enterprise=enterprise, name="ERP", scopes=["read"], created_by=None)
    stored = ApiKey.objects.get(pk=created.api_key.pk)
    assert created.secret not in {stored.secret_hash, stored.prefix, stored.name}
    assert stored.secret_hash != created.secret and len(stored.secret_hash) == 64
    assert created.secret.startswith(f"hlk_{stored.prefix}_")
    assert stored.last_used_at is None

    api_key_authenticate(raw_key=created.secret)
    first_use = ApiKey.objects.get(pk=stored.pk).last_used_at
    assert first_use is not None
    # A second use within the resolution does not write again.
    api_key_authenticate(raw_key=created.secret)
    assert ApiKey.objects.get(pk=stored.pk).last_used_at == first_use
    assert LAST_USED_RESOLUTION.total_seconds() == 60


def test_only_an_admin_member_creates_or_revokes_keys(enterprise):
    maker = MembershipFactory(enterprise=enterprise, role=MemberRole.MAKER).user
    admin = MembershipFactory(enterprise=enterprise, role=MemberRole.ADMIN).user
    with pytest.raises(DomainError) as refused:
        api_key_create(enterprise=enterprise, name="x", scopes=["read"], created_by=maker)
    assert refused.value.code == "member_not_admin"

    created = api_key_create(enterprise=enterprise, name="x", scopes=["read"], created_by=admin)
    with pytest.raises(DomainError):
        api_key_revoke(api_key=created.api_key, revoked_by=maker)
    assert api_key_revoke(api_key=created.api_key, revoked_by=admin).revoked_at is not None


@pytest.mark.parametrize("scopes", [[], ["read", "admin"], ["everything"]])
def test_unknown_or_missing_scopes_are_refused(enterprise, scopes):
    with pytest.raises(DomainError) as refused:
        api_key_create(enterprise=enterprise, name="x", scopes=scopes, created_by=None)
    assert refused.value.code == "api_key_scopes_invalid"


def test_a_key_without_read_scope_cannot_read(enterprise, make_client):
    client = make_client(enterprise, scopes=["payments"])
    body = assert_problem(client.get("/api/v1/balances"), 403, "insufficient_scope")
    assert "read" in body["detail"]


# --- /me -------------------------------------------------------------------------------


def test_me_shows_enterprise_key_scopes_and_limits(enterprise, make_client, settings):
    client = make_client(enterprise, scopes=["read", "fx"])
    body = client.get("/api/v1/me").json()
    assert body["enterprise"] == {"id": enterprise.public_id, "name": enterprise.legal_name, "status": "approved"}
    assert body["api_key"]["scopes"] == ["fx", "read"]
    assert body["api_key"]["id"].startswith("key_")
    limits = {row["currency"]: row for row in body["limits"]}
    assert set(limits) == {"HKD", "USD", "CNH"}
    assert limits["HKD"]["single_payment"] == {
        "amount": settings.KYB_DEFAULT_LIMITS["HKD"]["single_payment"],
        "currency": "HKD",
    }


# --- problem details -----------------------------------------------------------------


def test_unknown_api_path_is_problem_json_not_html(client_a):
    assert_problem(client_a.get("/api/v1/no-such-thing"), 404, "not_found")


def test_handler404_and_500_answer_problem_json_on_api_paths_only():
    request = RequestFactory().get("/api/v1/whatever")
    assert handler404(request, Exception())["Content-Type"] == PROBLEM
    assert handler500(request)["Content-Type"] == PROBLEM
    assert handler500(request).status_code == 500
    portal = RequestFactory().get("/dashboard")
    assert handler404(portal, Exception())["Content-Type"].startswith("text/html")


def test_not_acceptable_is_a_problem(client_a):
    assert_problem(client_a.get("/api/v1/me", HTTP_ACCEPT="text/html"), 406, "not_acceptable")


def test_validation_errors_list_each_invalid_field(client_a):
    response = client_a.post(
        "/api/v1/webhook-endpoints", {"event_types": [], "description": "x" * 300}, format="json",
        HTTP_IDEMPOTENCY_KEY="v-1",
    )  # fmt: skip
    body = assert_problem(response, 400, "validation_error")
    fields = {error["field"]: error["code"] for error in body["errors"]}
    assert fields == {"url": "required", "event_types": "min_length", "description": "max_length"}


def test_malformed_json_is_a_problem(client_a):
    response = client_a.generic(
        "POST", "/api/v1/webhook-endpoints", "{not json", content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="m-1",
    )  # fmt: skip
    assert_problem(response, 400, "malformed_request")


def test_domain_money_and_unexpected_errors_become_problems():
    class Refused(DomainError):
        code = "thing_refused"
        title = "Refused."
        http_status = 422

    response = api_exception_handler(Refused("Because."), {})
    assert (response.status_code, response.data["code"], response.data["detail"]) == (422, "thing_refused", "Because.")

    response = api_exception_handler(MoneyParseError("amount_too_precise", "Too precise.", "amount.amount"), {})
    assert response.status_code == 400
    assert response.data["errors"] == [
        {"field": "amount.amount", "code": "amount_too_precise", "detail": "Too precise."}
    ]

    response = api_exception_handler(RuntimeError("secret internals"), {})
    assert response.status_code == 500 and response.data["code"] == "internal_error"
    assert "secret internals" not in str(response.data)


def test_money_field_keeps_the_refusal_code_per_subfield():
    from rest_framework import serializers

    from config.api.fields import MoneyField

    class Payment(serializers.Serializer):
        amount = MoneyField()

    for value, field, code in [
        ({"amount": 12.5, "currency": "HKD"}, "amount.amount", "amount_not_string"),
        ({"amount": "1.005", "currency": "HKD"}, "amount.amount", "amount_too_precise"),
        ({"amount": "1e3", "currency": "USD"}, "amount.amount", "amount_exponent"),
        ({"amount": "10.00", "currency": "EUR"}, "amount.currency", "unknown_currency"),
        ("10.00", "amount", "money_malformed"),
    ]:
        serializer = Payment(data={"amount": value})
        assert not serializer.is_valid()
        from config.api.exceptions import validation_errors

        errors = list(validation_errors(serializer.errors))
        assert [(e["field"], e["code"]) for e in errors] == [(field, code)], value

    ok = Payment(data={"amount": {"amount": "1250.50", "currency": "CNH"}})
    assert ok.is_valid()
    assert Payment(ok.validated_data).data["amount"] == {"amount": "1250.50", "currency": "CNH"}


def test_a_body_over_the_size_limit_is_413_not_500(client_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client_a.post(
        "/api/v1/webhook-endpoints", {"url": "https://a.example.com/" + "x" * 2000, "event_types": ["*"]},
        format="json", HTTP_IDEMPOTENCY_KEY="big-1",
    )  # fmt: skip
    assert_problem(response, 413, "request_too_large")


@pytest.mark.parametrize(
    "raw",
    [
        '{"url": "https://a.example.com/h", "event_types": ["*"], "description": "a\\u0000b"}',
        '{"url": "https://a.example.com/h", "event_types": ["*"], "description": "\\ud800"}',
        '{"url": "https://a.example.com/h", "event_types": ["*"], "\\u0000": 1}',
        '{"url": "https://a.example.com/h", "event_types": ["*"], "n": NaN}',
        '{"url": "https://a.example.com/h", "event_types": ["*"], "n": -Infinity}',
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["nul", "surrogate", "nul-key", "nan", "infinity", "deep"],
)
def test_json_that_no_column_can_store_is_malformed_not_a_500(client_a, raw):
    response = client_a.generic(
        "POST", "/api/v1/webhook-endpoints", raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY="nul-1"
    )
    assert_problem(response, 400, "malformed_request")


def test_the_authenticated_key_is_the_stored_key_and_its_enterprise_in_one_query(enterprise, django_assert_num_queries):
    # api_key_authenticate reads the key with hand-written SQL (compiled once
    # per process); it must load exactly what the ORM loads.
    created = api_key_create(enterprise=enterprise, name="ERP", scopes=["read", "fx"], created_by=None)
    api_key_authenticate(raw_key=created.secret)  # records last use: a datetime to compare too
    expected = ApiKey.objects.select_related("enterprise").get(pk=created.api_key.pk)

    with django_assert_num_queries(1):
        loaded = api_key_authenticate(raw_key=created.secret)
        loaded_enterprise = loaded.enterprise

    for field in ApiKey._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    for field in type(expected.enterprise)._meta.concrete_fields:
        assert getattr(loaded_enterprise, field.attname) == getattr(expected.enterprise, field.attname), field.name
    assert loaded.scopes == ["fx", "read"] and loaded.last_used_at is not None
    assert not loaded._state.adding and loaded._state.db == "default"

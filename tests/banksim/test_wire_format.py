"""banksim speaks Stripe's wire format, and settlement/rails.py speaks only that to it."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl

import httpx
import pytest

from settlement.rails import (
    Balance,
    Payout,
    RailsAuthenticationError,
    RailsIdempotencyError,
    RailsInvalidRequest,
    RailsNotFound,
    form_encode,
)

pytestmark = pytest.mark.integration


def bank_account(rails, number: str = "000123456789", currency: str = "HKD"):
    return rails.external_account_create(
        account_number=number, currency=currency, account_holder_name="Acme Trading Ltd", idempotency_key=f"ba-{number}"
    )


def test_wrong_or_missing_key_is_a_401_stripe_error(banksim):
    missing = banksim.http("GET", "/v1/balance", key="")
    wrong = banksim.http("GET", "/v1/balance", key="sk_test_not_the_right_one")

    assert missing.status_code == wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "invalid_request_error"
    assert "Invalid API Key" in wrong.json()["error"]["message"]
    assert "sk_test_not_the_right_one" not in wrong.json()["error"]["message"]  # never echoed whole
    with banksim.client(secret_key="sk_test_wrong") as rails, pytest.raises(RailsAuthenticationError) as caught:
        rails.balance_retrieve()
    assert caught.value.bank_status == 401


def test_basic_auth_with_the_key_as_user_name_is_accepted_as_stripe_does(banksim):
    token = base64.b64encode(f"{banksim.secret_key}:".encode()).decode()

    response = httpx.get(banksim.url + "/v1/balance", headers={"Authorization": f"Basic {token}"})

    assert response.status_code == 200
    assert response.json()["object"] == "balance"


def test_errors_have_stripes_shape_code_and_param(banksim):
    missing = banksim.http("POST", "/v1/payouts", data={"currency": "hkd"}, headers={"Idempotency-Key": "a"})
    unknown = banksim.http(
        "POST", "/v1/payouts", data={"amount": "1", "currency": "hkd", "fee": "5"}, headers={"Idempotency-Key": "b"}
    )
    not_integer = banksim.http(
        "POST", "/v1/payouts", data={"amount": "1.50", "currency": "hkd"}, headers={"Idempotency-Key": "c"}
    )
    bad_currency = banksim.http(
        "POST", "/v1/payouts", data={"amount": "150", "currency": "eur"}, headers={"Idempotency-Key": "d"}
    )
    no_such_path = banksim.http("GET", "/v1/charges")

    assert missing.status_code == 400
    assert missing.json()["error"] == {
        "type": "invalid_request_error",
        "message": "Missing required param: amount.",
        "code": "parameter_missing",
        "param": "amount",
        "doc_url": "https://stripe.com/docs/error-codes/parameter-missing",
    }
    assert (unknown.json()["error"]["code"], unknown.json()["error"]["param"]) == ("parameter_unknown", "fee")
    assert not_integer.json()["error"]["code"] == "parameter_invalid_integer"
    assert bad_currency.json()["error"]["param"] == "currency"
    assert no_such_path.status_code == 404
    assert "Request-Id" in missing.headers and missing.headers["Request-Id"].startswith("req_")


def test_payout_with_same_key_and_params_is_replayed_not_repeated(banksim):
    with banksim.client() as rails:
        destination = bank_account(rails).id
        first = rails.payout_create(
            amount_minor=12_345, currency="HKD", destination=destination, idempotency_key="red_1:payout"
        )
        again = rails.payout_create(
            amount_minor=12_345, currency="HKD", destination=destination, idempotency_key="red_1:payout"
        )
        raw = banksim.http(
            "POST",
            "/v1/payouts",
            data={"amount": "12345", "currency": "hkd", "destination": destination},
            headers={"Idempotency-Key": "red_1:payout"},
        )
        balance = rails.balance_retrieve()

    assert again.id == first.id and again.raw == first.raw
    assert raw.headers["Idempotent-Replayed"] == "true"
    assert raw.json()["id"] == first.id
    assert banksim.payouts_count() == 1
    assert balance.available["HKD"] == 100_000_000 - 12_345


def test_same_key_with_other_params_or_endpoint_is_an_idempotency_error(banksim):
    with banksim.client() as rails:
        destination = bank_account(rails).id
        rails.payout_create(amount_minor=100, currency="HKD", destination=destination, idempotency_key="k-1")

        with pytest.raises(RailsIdempotencyError) as other_params:
            rails.payout_create(amount_minor=101, currency="HKD", destination=destination, idempotency_key="k-1")
        with pytest.raises(RailsIdempotencyError) as other_endpoint:
            rails.test_inbound_wire(amount_minor=100, currency="HKD", reference="R", idempotency_key="k-1")

    assert other_params.value.bank_status == 400
    assert other_params.value.stripe_type == "idempotency_error"
    assert "same parameters" in other_params.value.message
    assert "same endpoint" in other_endpoint.value.message
    assert banksim.payouts_count() == 1


def test_a_refused_request_saves_nothing_so_the_key_can_be_used_once_corrected(banksim):
    with banksim.client() as rails:
        destination = bank_account(rails).id
        with pytest.raises(RailsInvalidRequest) as refused:
            rails.payout_create(amount_minor=10**12, currency="HKD", destination=destination, idempotency_key="k-2")
        payout = rails.payout_create(amount_minor=10, currency="HKD", destination=destination, idempotency_key="k-2")

    assert refused.value.stripe_code == "balance_insufficient"
    assert payout.amount_minor == 10


def test_lists_page_newest_first_with_has_more_and_cursors(banksim):
    with banksim.client() as rails:
        wires = [
            rails.test_inbound_wire(amount_minor=n, currency="USD", reference=f"R{n}", idempotency_key=f"w{n}").id
            for n in range(1, 6)
        ]
    newest_first = list(reversed(wires))

    first = banksim.http("GET", "/v1/inbound_wires", params={"limit": 2}).json()
    second = banksim.http(
        "GET", "/v1/inbound_wires", params={"limit": 2, "starting_after": first["data"][-1]["id"]}
    ).json()
    third = banksim.http(
        "GET", "/v1/inbound_wires", params={"limit": 2, "starting_after": second["data"][-1]["id"]}
    ).json()
    before = banksim.http("GET", "/v1/inbound_wires", params={"limit": 2, "ending_before": third["data"][0]["id"]})
    too_big = banksim.http("GET", "/v1/inbound_wires", params={"limit": 101})

    assert (first["object"], first["url"], first["has_more"]) == ("list", "/v1/inbound_wires", True)
    assert [w["id"] for w in first["data"] + second["data"] + third["data"]] == newest_first
    assert (second["has_more"], third["has_more"]) == (True, False)
    assert [w["id"] for w in before.json()["data"]] == newest_first[2:4]
    assert too_big.status_code == 400


def test_client_sends_only_stripe_parameters_and_our_fields_in_metadata(banksim):
    sent: list[httpx.Request] = []

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return super().handle_request(request)

    with banksim.client(transport=Recording()) as rails:
        destination = bank_account(rails).id
        payout = rails.payout_create(
            amount_minor=5_000,
            currency="HKD",
            destination=destination,
            idempotency_key="red_2:payout",
            metadata={"redemption_id": "red_2", "enterprise_id": "ent_9"},
            description="Redemption red_2",
        )

    keys = {key for key, _ in parse_qsl(sent[-1].content.decode())}
    assert keys == {
        "amount",
        "currency",
        "destination",
        "description",
        "metadata[redemption_id]",
        "metadata[enterprise_id]",
    }
    assert sent[-1].headers["Idempotency-Key"] == "red_2:payout"
    assert sent[-1].headers["Authorization"] == f"Bearer {banksim.secret_key}"
    assert sent[-1].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert payout.metadata == {"redemption_id": "red_2", "enterprise_id": "ent_9"}
    assert (payout.amount_minor, payout.currency) == (5_000, "HKD")


def test_form_encoding_nests_like_stripe():
    assert form_encode({"a": 1, "m": {"k": "v", "skip": None}, "e": ["x", "y"], "b": True}) == [
        ("a", "1"),
        ("m[k]", "v"),
        ("e[0]", "x"),
        ("e[1]", "y"),
        ("b", "true"),
    ]


def test_responses_with_unknown_fields_are_read():
    payout = Payout.from_stripe(
        {
            "id": "po_1",
            "object": "payout",
            "amount": 100,
            "currency": "cnh",
            "status": "paid",
            "created": 1,
            "destination": {"id": "ba_1", "object": "bank_account"},
            "a_field_from_the_future": {"nested": True},
        }
    )
    balance = Balance.from_stripe({"object": "balance", "available": [{"amount": 5, "currency": "hkd", "x": 1}]})

    assert (payout.currency, payout.destination, payout.amount_minor) == ("CNH", "ba_1", 100)
    assert balance.available == {"HKD": 5} and balance.pending == {}


def test_unknown_object_ids_are_not_found(banksim):
    with banksim.client() as rails, pytest.raises(RailsNotFound) as caught:
        rails.payout_retrieve(payout_id="po_doesnotexist")

    assert caught.value.bank_status == 404
    assert caught.value.stripe_code == "resource_missing"


def test_rails_client_reads_its_configuration_from_settings(banksim_settings):
    from settlement.rails import rails_client

    with rails_client() as rails:
        balance = rails.balance_retrieve()

    assert balance.available == {"CNH": 100_000_000, "HKD": 100_000_000, "USD": 100_000_000}

"""The FX API: quotes, accept (idempotent, tenant-scoped), rates, swap history with filters and CSV."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fx import selectors
from fx.models import EnterpriseFxTerms, PricingTier, Swap
from settlement.ledger.selectors import ledger_verify

QUOTES = "/api/v1/fx/quotes"


def _post(client, url, body=None, key="k-1"):
    return client.post(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.fixture
def freeze_rates(rates, now, settings):
    # The API runs on the real clock; rates published at the test's T0 would be stale.
    settings.FX_RATES_STALE_AFTER_SECONDS = 10**9
    settings.FX_QUOTE_TTL_SECONDS = 10**6  # quotes created_at=real now; expiry far away


def test_quote_then_accept(funded, freeze_rates, inventory, api_client_for):
    enterprise = funded()
    client = api_client_for(enterprise)

    quoted = _post(
        client,
        QUOTES,
        {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": "1000.00", "currency": "USD"}},
    )
    assert quoted.status_code == 201, quoted.json()
    body = quoted.json()
    assert body["id"].startswith("fxq_")
    assert body["sell"] == {"amount": "1000.00", "currency": "USD"}
    assert body["buy"] == {"amount": "7788.86", "currency": "HKD"}
    assert body["fee"] == {"amount": "0.00", "currency": "USD"}
    assert (body["mid_rate"], body["client_rate"], body["spread_bps"]) == ("7.8123000000", "7.7888631000", 30)
    assert body["status"] == "open" and body["expires_at"]

    accepted = _post(client, f"{QUOTES}/{body['id']}/accept", key="k-2")
    assert accepted.status_code == 201, accepted.json()
    swap = accepted.json()
    assert swap["quote"] == body["id"] and swap["id"].startswith("fxs_") and swap["journal_entry"].startswith("je_")
    assert swap["buy"] == {"amount": "7788.86", "currency": "HKD"}

    replay = _post(client, f"{QUOTES}/{body['id']}/accept", key="k-2")
    assert replay.status_code == 201 and replay.json() == swap
    assert replay["Idempotent-Replayed"] == "true"
    again = _post(client, f"{QUOTES}/{body['id']}/accept", key="k-3")
    assert (again.status_code, again.json()["code"]) == (409, "quote_already_accepted")
    assert Swap.objects.count() == 1
    assert ledger_verify().ok


def test_buy_amount_quote(funded, freeze_rates, inventory, api_client_for):
    client = api_client_for(funded())

    response = _post(
        client,
        QUOTES,
        {"sell_currency": "HKD", "buy_currency": "USD", "buy_amount": {"amount": "100.00", "currency": "USD"}},
    )

    assert response.status_code == 201
    assert response.json()["sell"] == {"amount": "783.59", "currency": "HKD"}
    assert response.json()["fixed_side"] == "buy"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": 10.5, "currency": "USD"}},
            "amount_not_string",
        ),
        (
            {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": "1e3", "currency": "USD"}},
            "amount_exponent",
        ),
        (
            {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": "1.001", "currency": "USD"}},
            "amount_too_precise",
        ),
        (
            {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": "1.00"},
            "money_malformed",
        ),
        (
            {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": "1.00", "currency": "HKD"}},
            "currency_mismatch",
        ),
        ({"sell_currency": "USD", "buy_currency": "HKD"}, "quote_amount_invalid"),
        (
            {"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": {"amount": "1.00", "currency": "USD"}},
            "invalid_choice",
        ),
    ],
)
def test_malformed_quote_requests(funded, freeze_rates, inventory, api_client_for, body, code):
    response = _post(api_client_for(funded()), QUOTES, body)

    assert response.status_code == 400
    assert code in {error.get("code") for error in response.json().get("errors", [])}, response.json()


def test_business_refusals_are_problems_with_their_code(funded, rates, inventory, api_client_for, settings):
    settings.FX_RATES_STALE_AFTER_SECONDS = 1  # rates were published at T0, long ago
    response = _post(
        api_client_for(funded()),
        QUOTES,
        {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": "1.00", "currency": "USD"}},
    )

    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "rates_stale"


def test_another_tenants_quote_is_404(funded, freeze_rates, inventory, api_client_for):
    owner, other = funded(), funded()
    quote_id = _post(
        api_client_for(owner),
        QUOTES,
        {"sell_currency": "USD", "buy_currency": "CNH", "sell_amount": {"amount": "10.00", "currency": "USD"}},
    ).json()["id"]
    client = api_client_for(other)

    assert client.get(f"{QUOTES}/{quote_id}").status_code == 404
    response = _post(client, f"{QUOTES}/{quote_id}/accept")
    assert (response.status_code, response.json()["code"]) == (404, "quote_not_found")


def test_quoting_needs_the_fx_scope(funded, freeze_rates, inventory, api_client_for):
    client = api_client_for(funded(), scopes=["read"])

    response = _post(
        client,
        QUOTES,
        {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": "1.00", "currency": "USD"}},
    )

    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


def test_rates(funded, freeze_rates, api_client_for):
    response = api_client_for(funded()).get("/api/v1/fx/rates")

    assert response.status_code == 200
    body = response.json()
    assert body["stale"] is False and body["spread_bps"] == 30
    assert {leg["currency"]: leg["mid"] for leg in body["legs"]} == {"HKD": "7.8123000000", "CNH": "7.1042000000"}
    assert len(body["pairs"]) == 6
    usd_hkd = next(p for p in body["pairs"] if (p["sell_currency"], p["buy_currency"]) == ("USD", "HKD"))
    assert (usd_hkd["mid_rate"], usd_hkd["client_rate"]) == ("7.8123000000", "7.7888631000")


def test_swap_history_filters_and_csv(funded, freeze_rates, inventory, api_client_for):
    enterprise = funded()
    client = api_client_for(enterprise)
    for n, (sell, buy) in enumerate([("USD", "HKD"), ("HKD", "CNH"), ("CNH", "USD")]):
        quote_id = _post(
            client,
            QUOTES,
            {"sell_currency": sell, "buy_currency": buy, "sell_amount": {"amount": "100.00", "currency": sell}},
            key=f"q{n}",
        ).json()["id"]
        assert _post(client, f"{QUOTES}/{quote_id}/accept", key=f"a{n}").status_code == 201
    api_client_for(funded())  # another tenant, no swaps of its own

    everything = client.get("/api/v1/fx/swaps").json()
    assert len(everything["results"]) == 3
    assert [s["sell"]["currency"] for s in everything["results"]] == ["CNH", "HKD", "USD"]  # newest first
    hkd = client.get("/api/v1/fx/swaps", {"currency": "HKD"}).json()["results"]
    assert {(s["sell"]["currency"], s["buy"]["currency"]) for s in hkd} == {("USD", "HKD"), ("HKD", "CNH")}
    assert len(client.get("/api/v1/fx/swaps", {"sell_currency": "CNH"}).json()["results"]) == 1

    response = client.get("/api/v1/fx/swaps", {"buy_currency": "HKD"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("swap_id,quote_id,accepted_at,sell_amount")
    assert len(lines) == 2 and ",100.00,USD," in lines[1] and Decimal(lines[1].split(",")[5]) == Decimal("778.88")


def test_a_quote_past_its_expiry_reads_as_expired(funded, rates, inventory, api_client_for, now):
    from fx import services

    enterprise = funded()
    quote = services.quote_create(
        enterprise=enterprise, sell_currency="USD", buy_currency="HKD", sell_amount=Decimal("5.00"), now=now
    )

    body = api_client_for(enterprise).get(f"{QUOTES}/{quote.public_id}").json()

    assert body["status"] == "expired"
    assert body["sell"] == {"amount": "5.00", "currency": "USD"}
    response = _post(api_client_for(enterprise), f"{QUOTES}/{quote.public_id}/accept")
    assert (response.status_code, response.json()["code"]) == (409, "quote_expired")


def test_rates_show_the_enterprises_own_tier(funded, freeze_rates, api_client_for):
    enterprise = funded()
    EnterpriseFxTerms.objects.create(enterprise=enterprise, tier=PricingTier.objects.create(name="Gold", spread_bps=10))

    body = api_client_for(enterprise).get("/api/v1/fx/rates").json()

    assert body["spread_bps"] == 10
    usd_hkd = next(p for p in body["pairs"] if (p["sell_currency"], p["buy_currency"]) == ("USD", "HKD"))
    assert usd_hkd["client_rate"] == "7.8044877000"  # 7.8123 less 10 bps


def test_terms_come_from_the_tier_or_the_settings_defaults(funded, settings):
    with_terms, without = funded(), funded()
    EnterpriseFxTerms.objects.create(
        enterprise=with_terms,
        tier=PricingTier.objects.create(name="Gold", spread_bps=10),
        single_swap_limit_usd=Decimal("5000.00"),
    )
    settings.FX_DEFAULT_SPREAD_BPS = 30
    settings.FX_DEFAULT_SINGLE_SWAP_LIMIT_USD = "250000.00"

    assert selectors.terms_for(enterprise=with_terms) == selectors.Terms(10, Decimal("5000.00"), "Gold")
    assert selectors.terms_for(enterprise=without) == selectors.Terms(30, Decimal("250000.00"), "Default")


def test_rates_follow_each_publication_and_spread(funded, publish, freeze_rates, api_client_for):
    # The pairs are remembered per (legs, spread): new legs or another tier are new pairs.
    enterprise = funded()
    client = api_client_for(enterprise)

    def usd_hkd() -> tuple[str, str]:
        pair = next(p for p in client.get("/api/v1/fx/rates").json()["pairs"] if p["buy_currency"] == "HKD")
        return pair["mid_rate"], pair["client_rate"]

    before = usd_hkd()
    publish(legs={"HKD": Decimal("7.8400"), "CNH": Decimal("7.1042")})
    after = usd_hkd()
    EnterpriseFxTerms.objects.create(enterprise=enterprise, tier=PricingTier.objects.create(name="Gold", spread_bps=10))

    assert before == ("7.8123000000", "7.7888631000")
    assert after == ("7.8400000000", "7.8164800000")
    assert usd_hkd() == ("7.8400000000", "7.8321600000")

"""Statements per FX API request: every round trip costs CPU on the benchmark's two cores
(docs/benchmarks.md, FX), so a request that grows a query fails here.

Counted through the test client inside the test's transaction, so the
Idempotency-Key claim's savepoint (SAVEPOINT / RELEASE) is in the counts; the
budgets are today's counts.
"""

from __future__ import annotations

import pytest

QUOTES = "/api/v1/fx/quotes"
QUOTE_BODY = {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": "125.00", "currency": "USD"}}


@pytest.fixture
def client(funded, rates, inventory, api_client_for, settings):
    settings.FX_RATES_STALE_AFTER_SECONDS = 10**9  # the API runs on the real clock
    settings.FX_QUOTE_TTL_SECONDS = 10**6
    client = api_client_for(funded())
    client.get("/api/v1/fx/rates")  # the key's last_used_at write happens here, once a minute
    return client


def _post(client, url, key, body=None):
    return client.post(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_quote_request_stays_within_its_statements(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(9):
        assert _post(client, QUOTES, "q-1", QUOTE_BODY).status_code == 201


def test_an_accept_stays_within_its_statements_and_answers_without_reading_back(client, django_assert_max_num_queries):
    quote_id = _post(client, QUOTES, "q-1", QUOTE_BODY).json()["id"]
    with django_assert_max_num_queries(12):
        accepted = _post(client, f"{QUOTES}/{quote_id}/accept", "a-1")
    assert accepted.status_code == 201
    # The answer, built from what the accept knew, is the swap as stored.
    assert client.get("/api/v1/fx/swaps").json()["results"] == [accepted.json()]


def test_reading_the_rates_stays_within_its_statements(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        assert client.get("/api/v1/fx/rates").status_code == 200

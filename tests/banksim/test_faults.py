"""Fault injection: the client retries through 500s and timeouts with one Idempotency-Key and never pays twice."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from settlement.rails import RailsApiError, RailsInvalidRequest, RailsUnavailable

pytestmark = pytest.mark.integration


def destination(rails, currency: str = "HKD") -> str:
    return rails.external_account_create(
        account_number="000123456789", currency=currency, account_holder_name="Acme", idempotency_key=f"ba-{currency}"
    ).id


def test_injected_500s_are_stripe_api_errors_and_do_nothing(banksim):
    with banksim.client() as rails:
        to = destination(rails)
    banksim.faults(error_rate=1.0)

    with banksim.client(max_retries=2) as rails, pytest.raises(RailsApiError) as caught:
        rails.payout_create(amount_minor=100, currency="HKD", destination=to, idempotency_key="e1")

    banksim.faults(reset=True)
    assert caught.value.retryable and caught.value.bank_status == 500
    assert caught.value.stripe_type == "api_error"
    assert banksim.payouts_count() == 0


def test_a_timed_out_payout_was_made_and_the_retry_with_its_key_gets_the_same_one(banksim):
    with banksim.client() as rails:
        to = destination(rails)
    banksim.faults(timeout_rate=1.0, timeout_ms=1_500)

    # The bank carries the payout out but answers too late: the client cannot know it was made.
    with banksim.client(timeout_s=0.3, max_retries=0) as rails, pytest.raises(RailsUnavailable) as caught:
        rails.payout_create(amount_minor=7_700, currency="HKD", destination=to, idempotency_key="red_t:payout")
    banksim.faults(reset=True)
    with banksim.client() as rails:
        retried = rails.payout_create(
            amount_minor=7_700, currency="HKD", destination=to, idempotency_key="red_t:payout"
        )
        balance = rails.balance_retrieve()

    assert caught.value.retryable
    assert banksim.payouts_count() == 1
    assert retried.amount_minor == 7_700
    assert balance.available["HKD"] == 100_000_000 - 7_700


def test_client_retries_through_500s_and_timeouts_without_paying_twice(banksim):
    attempts: list[httpx.Request] = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            attempts.append(request)
            return super().handle_request(request)

    with banksim.client() as rails:
        to = destination(rails)
    banksim.faults(error_rate=0.3, timeout_rate=0.2, timeout_ms=800)

    # Half the attempts fail (P(all 21 attempts of one payout fail) = 0.5^21).
    with banksim.client(timeout_s=0.3, max_retries=20, retry_backoff_s=0.005, transport=Counting()) as rails:
        payouts = [
            rails.payout_create(amount_minor=1_000 + n, currency="HKD", destination=to, idempotency_key=f"red_{n}:po")
            for n in range(20)
        ]
    banksim.faults(reset=True)
    with banksim.client() as rails:
        at_bank = list(rails.payouts_iter())
        balance = rails.balance_retrieve()

    assert len(attempts) > 20  # faults were met and retried through (P(none in 20 attempts) = 0.5^20)
    assert len({p.id for p in payouts}) == 20
    assert len(at_bank) == 20  # every payout once at the bank, however often it was asked for
    assert {p.id for p in at_bank} == {p.id for p in payouts}
    assert balance.available["HKD"] == 100_000_000 - sum(1_000 + n for n in range(20))


def test_added_latency_past_the_client_timeout_is_unavailable(banksim):
    banksim.faults(latency_ms=400)
    started = time.monotonic()

    with banksim.client(timeout_s=0.1, max_retries=1) as rails, pytest.raises(RailsUnavailable):
        rails.balance_retrieve()

    assert time.monotonic() - started < 1.5
    banksim.faults(reset=True)
    with banksim.client() as rails:
        assert rails.balance_retrieve().available["HKD"] == 100_000_000


def test_faults_set_at_start_and_changed_at_run_time(banksim_factory):
    bank = banksim_factory(error_rate=1.0, fail_payouts="could_not_process")

    before = bank.http("GET", "/v1/test_helpers/faults").json()
    changed = bank.faults(error_rate=0, latency_ms=5)
    refused = bank.http("POST", "/v1/test_helpers/faults", data={"error_rate": "1.5"})
    unknown_code = bank.http("POST", "/v1/test_helpers/faults", data={"fail_payouts": "gremlins"})
    reset = bank.faults(reset=True)

    assert (before["error_rate"], before["fail_payouts"]) == (1.0, "could_not_process")
    assert (changed["error_rate"], changed["latency_ms"]) == (0.0, 5)
    assert refused.status_code == unknown_code.status_code == 400
    assert reset["error_rate"] == 1.0  # back to the configuration it started with


def test_a_post_without_an_idempotency_key_is_never_sent(banksim):
    with banksim.client() as rails, pytest.raises(ValueError):
        rails.payout_create(amount_minor=1, currency="HKD", destination="ba_x", idempotency_key="")


def test_validation_errors_are_not_retried(banksim):
    banksim_calls_before = banksim.http("GET", "/v1/events").json()["data"]

    with banksim.client(max_retries=5) as rails, pytest.raises(RailsInvalidRequest):
        rails.payout_create(amount_minor=1, currency="HKD", destination="ba_missing", idempotency_key="v")

    assert banksim.http("GET", "/v1/events").json()["data"] == banksim_calls_before


def test_concurrent_requests_with_one_key_make_one_payout(banksim):
    with banksim.client() as rails:
        to = destination(rails)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def pay() -> None:
        with banksim.client() as rails:
            barrier.wait()
            payout = rails.payout_create(amount_minor=321, currency="HKD", destination=to, idempotency_key="race")
            results.append(payout.id)

    threads = [threading.Thread(target=pay) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(results) == 8 and len(set(results)) == 1
    assert banksim.payouts_count() == 1

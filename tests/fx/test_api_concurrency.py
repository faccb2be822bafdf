"""Idempotency-Key under concurrency through the FX API, on real PostgreSQL connections.

A POST claims its key, executes and stores its answer in one transaction
(corporates/api/idempotency.py): a duplicate sent while the first still runs
waits on the key's unique index and then replays the first answer.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from fx.models import Quote, Swap
from settlement.ledger.selectors import ledger_verify

QUOTES = "/api/v1/fx/quotes"
QUOTE_BODY = {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": "125.00", "currency": "USD"}}


def _post(client, url, key, body=None):
    return client.post(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _backends_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_sent_while_the_first_runs_waits_for_it_and_replays_it(
    funded, rates, inventory, api_client_for, settings
):
    settings.FX_RATES_STALE_AFTER_SECONDS = 10**9  # the API runs on the real clock
    settings.FX_QUOTE_TTL_SECONDS = 10**6
    enterprise = funded()
    quote_id = _post(api_client_for(enterprise), QUOTES, "q-1", QUOTE_BODY).json()["id"]
    holding, release = threading.Event(), threading.Event()
    answers: dict[str, object] = {}

    def hold_the_quote() -> None:
        # Another transaction holds the quote's row: the first accept claims
        # its key, then waits inside the operation.
        try:
            with transaction.atomic():
                Quote.objects.select_for_update().get(public_id=quote_id)
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def accept(name: str) -> None:
        try:
            answers[name] = _post(api_client_for(enterprise), f"{QUOTES}/{quote_id}/accept", "a-1")
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_quote)
    holder.start()
    assert holding.wait(timeout=10)
    first = threading.Thread(target=accept, args=("first",))
    first.start()
    _wait_for(lambda: _backends_waiting_on_a_lock() >= 1)
    duplicate = threading.Thread(target=accept, args=("duplicate",))
    duplicate.start()
    # The duplicate waits too (on the first's uncommitted key), not answered 409 in progress.
    _wait_for(lambda: _backends_waiting_on_a_lock() >= 2)
    assert "duplicate" not in answers
    release.set()
    for thread in (holder, first, duplicate):
        thread.join(timeout=30)

    executed, replayed = answers["first"], answers["duplicate"]
    assert executed.status_code == replayed.status_code == 201, (executed.json(), replayed.json())
    assert not executed.has_header("Idempotent-Replayed") and replayed["Idempotent-Replayed"] == "true"
    assert replayed.json() == executed.json()
    assert Swap.objects.count() == 1
    assert ledger_verify().ok


def _wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)

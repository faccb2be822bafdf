"""GET /balances and the wallet statement: running balance, date filter, cursor pages, CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from settlement.ledger.models import EntryKind, JournalEntry
from settlement.ledger.selectors import wallet_for
from settlement.ledger.services import ledger_post, legs_debit_credit

pytestmark = pytest.mark.django_db
HK = ZoneInfo("Asia/Hong_Kong")


def test_balances_are_money_objects_per_currency(enterprise, client_a, mint):
    mint(enterprise, "1250.50", "HKD")
    mint(enterprise, "0.01", "CNH")

    body = client_a.get("/api/v1/balances").json()

    assert body == {
        "balances": [
            {"amount": "1250.50", "currency": "HKD"},
            {"amount": "0.00", "currency": "USD"},
            {"amount": "0.01", "currency": "CNH"},
        ]
    }


def _transfer(payer, payee, minor: int, key: str, memo: str = "") -> None:
    ledger_post(
        idempotency_key=key,
        kind=EntryKind.TRANSFER,
        legs=legs_debit_credit(
            debit=wallet_for(enterprise=payer, currency="HKD"),
            credit=wallet_for(enterprise=payee, currency="HKD"),
            minor=minor,
        ),
        memo=memo,
    )


def _backdate(days_ago: int) -> None:
    # Journal entries are immutable (a trigger refuses UPDATE). To put the
    # newest entry on an earlier day, the test turns triggers off for this one
    # statement, inside the test's own transaction (which is rolled back).
    entry = JournalEntry.objects.order_by("-id").first()
    when = datetime(2026, 3, 10, 12, 0, tzinfo=HK) - timedelta(days=days_ago)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE settlement_journalentry SET created_at = %s WHERE id = %s", [when, entry.id])
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


@pytest.fixture
def history(enterprise, make_enterprise, mint):
    """HKD wallet: +100.00 (day -3), -30.00 (day -2), +5.25 (day -1), -0.25 (day 0)."""
    other = make_enterprise()
    mint(enterprise, "100.00", "HKD")
    _backdate(3)
    _transfer(enterprise, other, 3000, "s-2", memo='=HYPERLINK("http://evil")')
    _backdate(2)
    mint(other, "50.00", "HKD")
    _transfer(other, enterprise, 525, "s-3", memo="invoice 7")
    _backdate(1)
    _transfer(enterprise, other, 25, "s-4")
    _backdate(0)
    return other


def test_statement_has_running_balance_oldest_first(history, client_a):
    body = client_a.get("/api/v1/accounts/HKD/statement").json()
    lines = body["results"]
    assert [(line["direction"], line["amount"]["amount"], line["balance_after"]["amount"]) for line in lines] == [
        ("credit", "100.00", "100.00"),
        ("debit", "30.00", "70.00"),
        ("credit", "5.25", "75.25"),
        ("debit", "0.25", "75.00"),
    ]
    assert lines[2]["memo"] == "invoice 7" and lines[2]["kind"] == "transfer"
    assert lines[0]["entry_id"].startswith("je_")
    assert body["next"] is None


def test_statement_filters_by_date_and_keeps_the_true_running_balance(history, client_a):
    body = client_a.get("/api/v1/accounts/HKD/statement", {"date_from": "2026-03-08", "date_to": "2026-03-09"}).json()
    assert [(line["amount"]["amount"], line["balance_after"]["amount"]) for line in body["results"]] == [
        ("30.00", "70.00"),
        ("5.25", "75.25"),
    ]


def test_statement_pages_with_a_cursor(history, client_a):
    first = client_a.get("/api/v1/accounts/HKD/statement", {"limit": 3}).json()
    assert len(first["results"]) == 3 and first["next"]
    second = client_a.get(first["next"]).json()
    assert [line["balance_after"]["amount"] for line in second["results"]] == ["75.00"]
    assert second["next"] is None and second["previous"]


def test_statement_as_csv_is_the_whole_range_and_defuses_formulas(history, client_a):
    response = client_a.get("/api/v1/accounts/HKD/statement", {"limit": 1}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["entry_id", "created_at", "kind", "memo", "direction", "amount", "currency", "balance_after"]
    assert [row[7] for row in rows[1:]] == ["100.00", "70.00", "75.25", "75.00"]
    assert rows[2][3].startswith("'=")


def test_statement_of_an_unknown_currency_is_404(client_a):
    response = client_a.get("/api/v1/accounts/EUR/statement")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_statement_with_a_bad_date_is_a_validation_problem(client_a):
    response = client_a.get("/api/v1/accounts/HKD/statement", {"date_from": "yesterday"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "date_from"


def test_errors_stay_problem_json_when_csv_was_asked_for(client_a):
    response = client_a.get("/api/v1/accounts/HKD/statement", {"date_from": "nope"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    ("value", "status"),
    [("2232-01-28T02:59:50.1+22:28", 200), ("0001-01-01T00:00:00+05:00", 400), ("2026-01-01T00:00:00Z", 200)],
)
def test_event_time_filters_take_any_iso_offset_without_a_500(client_a, value, status):
    # Found by schemathesis: PostgreSQL refuses offsets past ±15:59.
    response = client_a.get("/api/v1/events", {"created_before": value})
    assert response.status_code == status, response.content


def test_statement_takes_the_extreme_dates(client_a, history):
    response = client_a.get("/api/v1/accounts/HKD/statement", {"date_from": "0001-01-01", "date_to": "9999-12-31"})
    assert response.status_code == 200 and len(response.json()["results"]) == 4


def test_walking_back_with_previous_gives_the_same_balances(history, client_a):
    first = client_a.get("/api/v1/accounts/HKD/statement", {"limit": 2}).json()
    second = client_a.get(first["next"]).json()
    back = client_a.get(second["previous"]).json()
    assert back["results"] == first["results"]
    assert [line["balance_after"]["amount"] for line in second["results"]] == ["75.25", "75.00"]

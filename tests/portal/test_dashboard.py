"""Dashboard balances and the statement page with its CSV export."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from config import money
from corporates.models import EnterpriseStatus
from settlement.ledger.models import AccountKind, EntryKind
from settlement.ledger.selectors import platform_account, wallet_for
from settlement.ledger.services import ledger_post, legs_debit_credit

pytestmark = pytest.mark.django_db


def post(key: str, *, debit, credit, amount: str, memo: str = ""):
    return ledger_post(
        idempotency_key=key,
        kind=EntryKind.TRANSFER if debit.kind == AccountKind.WALLET else EntryKind.MINT,
        legs=legs_debit_credit(
            debit=debit, credit=credit, minor=money.to_minor(money.parse_amount(amount, "HKD"), "HKD")
        ),
        memo=memo,
    )


def test_balances_are_shown_exactly_per_currency(make_member, portal_client, mint):
    member = make_member("viewer")
    mint(member.enterprise, "2500000.00", "HKD")
    mint(member.enterprise, "0.01", "USD")

    response = portal_client(member).get(reverse("corporates:dashboard"))
    page = response.content.decode()

    assert "no-store" in response["Cache-Control"]
    assert 'data-testid="balance-HKD">2,500,000.00<' in page
    assert 'data-testid="balance-USD">0.01<' in page
    assert 'data-testid="balance-CNH">0.00<' in page
    assert 'data-testid="enterprise-status">Approved<' in page


def test_a_frozen_enterprise_is_told_it_cannot_move_money(make_member, portal_client):
    member = make_member("viewer")
    type(member.enterprise).objects.filter(pk=member.enterprise.pk).update(status=EnterpriseStatus.FROZEN)
    page = portal_client(member).get(reverse("corporates:dashboard")).content.decode()
    assert "frozen: no money can move" in page


def test_the_statement_runs_the_balance_and_filters_by_date(make_member, make_enterprise, portal_client, mint):
    member = make_member("viewer")
    other = make_enterprise()
    wallet = mint(member.enterprise, "1000.00", "HKD")
    post("t1", debit=wallet, credit=wallet_for(enterprise=other, currency="HKD"), amount="250.50", memo="Invoice 17")
    mint(other, "999.00", "HKD")  # another tenant's money never shows
    client = portal_client(member)

    response = client.get(reverse("corporates:statement", args=["HKD"]))
    lines = response.context["statement"].lines
    assert [(line.amount_minor, line.balance_minor) for line in lines] == [(100000, 100000), (-25050, 74950)]
    page = response.content.decode()
    assert 'data-testid="opening">0.00<' in page
    assert 'data-testid="closing">749.50<' in page
    assert "-250.50" in page

    # Journal entries are immutable (PostgreSQL refuses to back-date them), so
    # the periods move around today instead: tomorrow opens with everything,
    # yesterday closes with nothing.
    today = timezone.localdate()
    response = client.get(reverse("corporates:statement", args=["HKD"]), {"date_from": str(today + timedelta(days=1))})
    assert response.context["statement"].lines == []
    assert response.context["statement"].opening_minor == 74950
    response = client.get(reverse("corporates:statement", args=["HKD"]), {"date_to": str(today - timedelta(days=1))})
    assert response.context["statement"].lines == []
    assert response.context["statement"].closing_minor == 0
    response = client.get(
        reverse("corporates:statement", args=["HKD"]), {"date_from": str(today), "date_to": str(today)}
    )
    assert len(response.context["statement"].lines) == 2


def test_the_statement_exports_csv_with_exact_amounts(make_member, portal_client, mint):
    member = make_member("viewer")
    wallet = mint(member.enterprise, "1000.00", "HKD")
    reserve = platform_account(kind=AccountKind.RESERVE, currency="HKD")
    post("formula", debit=reserve, credit=wallet, amount="0.05", memo='=HYPERLINK("http://evil")')

    response = portal_client(member).get(reverse("corporates:statement", args=["HKD"]), {"format": "csv"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["date", "entry", "kind", "memo", "amount", "balance", "currency"]
    assert rows[1][2:] == ["Opening balance", "", "", "0.00", "HKD"]
    assert [row[4:] for row in rows[2:]] == [["1000.00", "1000.00", "HKD"], ["0.05", "1000.05", "HKD"]]
    # Times are the platform's (Hong Kong), with their offset.
    assert rows[2][0].endswith("+08:00")
    # A memo that a spreadsheet would run as a formula is neutralised.
    assert rows[3][3] == '\'=HYPERLINK("http://evil")'


def test_a_bad_period_is_a_form_error(make_member, portal_client):
    client = portal_client(make_member("viewer"))
    today = date.today()
    response = client.get(
        reverse("corporates:statement", args=["HKD"]),
        {"date_from": str(today), "date_to": str(today - timedelta(days=1))},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["date_to"]
    as_csv = client.get(
        reverse("corporates:statement", args=["HKD"]),
        {"date_from": str(today), "date_to": str(today - timedelta(days=1)), "format": "csv"},
    )
    assert as_csv["Content-Type"].startswith("text/html")


def test_an_unknown_currency_is_not_found(make_member, portal_client):
    assert portal_client(make_member("viewer")).get(reverse("corporates:statement", args=["EUR"])).status_code == 404


def test_a_long_statement_shows_its_first_lines_and_the_csv_has_all(make_member, portal_client, mint, settings):
    settings.PORTAL_STATEMENT_PAGE_LINES = 2
    member = make_member("viewer")
    for _ in range(3):
        mint(member.enterprise, "1.00", "HKD")
    client = portal_client(member)

    response = client.get(reverse("corporates:statement", args=["HKD"]))
    assert len(response.context["lines"]) == 2
    assert "1 more in the CSV" in response.content.decode()
    assert 'data-testid="closing">3.00<' in response.content.decode()
    rows = list(
        csv.reader(
            io.StringIO(client.get(reverse("corporates:statement", args=["HKD"]), {"format": "csv"}).content.decode())
        )
    )
    assert len(rows) == 2 + 3

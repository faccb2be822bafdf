"""Sanctions screening: normalised fuzzy matching, alerts, reloads, back-office decisions."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from corporates.models import (
    AlertStatus,
    BankAccountStatus,
    EnterpriseStatus,
    PartyKind,
    SanctionsAlert,
    SanctionsEntry,
    SanctionsListLoad,
)
from corporates.onboarding.applications import OwnerInput
from corporates.onboarding.banking import bank_account_register
from corporates.sanctions import (
    SanctionsAlertNotOpen,
    SanctionsListInvalid,
    name_match_score,
    name_normalise,
    sanctions_alert_clear,
    sanctions_alert_confirm,
    sanctions_list_load,
)
from corporates.services import ReasonRequired
from tests.corporates.conftest import SANCTIONS_CSV

pytestmark = pytest.mark.django_db


def test_normalisation_drops_accents_case_punctuation_and_legal_forms():
    assert name_normalise("  José  ÑÚÑEZ-Villalobos ") == "jose nunez villalobos"
    assert name_normalise("Søren Åkerlund") == "soren akerlund"
    assert name_normalise("Blackwater Maritime Trading Ltd.") == "blackwater maritime trading"
    assert name_normalise("The Company Ltd") == "the company ltd"  # nothing but legal words: keep them


@pytest.mark.parametrize(
    ("screened", "listed"),
    [
        ("JOSE NUNEZ VILLALOBOS", "José Ñúñez Villalobos"),  # case and accents
        ("Villalobos, José Núñez", "José Ñúñez Villalobos"),  # word order and punctuation
        ("Jose Nunes Villalobos", "José Ñúñez Villalobos"),  # one-letter spelling variant
        ("blackwater maritime trading limited", "Blackwater Maritime Trading Ltd"),
        ("Zhao Ming De", "ZHAO MINGDE"),  # romanisation split differently
    ],
)
def test_matches_score_above_the_threshold(settings, screened, listed):
    assert name_match_score(screened, listed) >= settings.SANCTIONS_MATCH_THRESHOLD


@pytest.mark.parametrize(
    ("screened", "listed"), [("Mei Chan", "José Ñúñez Villalobos"), ("Blue Harbour Trading", "Blackwater Maritime")]
)
def test_different_names_score_below_the_threshold(settings, screened, listed):
    assert name_match_score(screened, listed) < settings.SANCTIONS_MATCH_THRESHOLD


def test_application_screens_applicant_and_beneficial_owners(apply, sanctions_list):
    owners = [
        OwnerInput(full_name="NUNEZ VILLALOBOS, Jose", nationality="VE", ownership_percent="40"),
        OwnerInput(full_name="Mei Chan", nationality="HK", ownership_percent="40"),
    ]
    enterprise = apply(legal_name="BLACKWATER MARITIME TRADING LTD", beneficial_owners=owners).enterprise

    alerts = {a.party_kind: a for a in enterprise.sanctions_alerts.all()}
    assert set(alerts) == {PartyKind.ENTERPRISE, PartyKind.BENEFICIAL_OWNER}
    owner_alert = alerts[PartyKind.BENEFICIAL_OWNER]
    assert owner_alert.entry_name == "José Ñúñez Villalobos"
    assert owner_alert.entry_list_source == "TEST-OFAC"
    assert owner_alert.score == Decimal("100.00")
    assert owner_alert.party_ref == enterprise.beneficial_owners.get(full_name__startswith="NUNEZ").public_id
    assert owner_alert.status == AlertStatus.OPEN


def test_an_alias_matches(apply, sanctions_list):
    enterprise = apply(
        beneficial_owners=[OwnerInput(full_name="El Contador", nationality="VE", ownership_percent="10")]
    ).enterprise
    [alert] = enterprise.sanctions_alerts.all()
    assert (alert.matched_name, alert.entry_name) == ("El Contador", "José Ñúñez Villalobos")


def test_a_clean_application_raises_no_alert(apply, sanctions_list):
    assert not apply().enterprise.sanctions_alerts.exists()


def test_threshold_is_a_setting(apply, sanctions_list, settings):
    settings.SANCTIONS_MATCH_THRESHOLD = 100  # exact (normalised) matches only
    assert apply(legal_name="Blackwater Maritime Trading Ltd").enterprise.sanctions_alerts.exists()
    assert apply(legal_name="Blackwater Maritime Trading Co").enterprise.sanctions_alerts.exists()  # legal form
    assert not apply(legal_name="Blackwatter Maritime Tradng").enterprise.sanctions_alerts.exists()


def test_reload_rescreens_existing_parties(apply, write_sanctions_csv, sanctions_list, make_enterprise):
    # Screened clean against the first list.
    applicant = apply(
        beneficial_owners=[OwnerInput(full_name="Kwame Mensah-Boateng", nationality="GH", ownership_percent="50")]
    ).enterprise
    approved = make_enterprise(legal_name="Lantau Logistics Ltd")
    account = bank_account_register(
        enterprise=approved, holder_name="Ines Zúñiga", bank_name="HSBC", account_number="004-123-456789-001",
        currency="HKD",
    )  # fmt: skip
    assert not SanctionsAlert.objects.exists()

    new_list = SANCTIONS_CSV + (
        "Kwame Mensah Boateng,,GH,TEST-UN\nLANTAU LOGISTICS LIMITED,,HK,TEST-OFSI\nZuniga Ines,,CL,TEST-EU\n"
    )
    result = sanctions_list_load(path=write_sanctions_csv(new_list))

    assert {(a.party_ref, a.party_kind) for a in result.alerts} == {
        (applicant.beneficial_owners.get().public_id, PartyKind.BENEFICIAL_OWNER),
        (approved.public_id, PartyKind.ENTERPRISE),
        (account.public_id, PartyKind.BANK_ACCOUNT_HOLDER),
    }
    # The old list's entries are gone; the new one is the only one in force.
    assert SanctionsEntry.objects.count() == 6
    assert SanctionsEntry.objects.filter(load=result.load).count() == 6


def test_reloading_the_same_list_raises_no_duplicate_and_keeps_clearances(
    apply, write_sanctions_csv, sanctions_list, back_office
):
    enterprise = apply(legal_name="Blackwater Maritime Trading Ltd").enterprise
    [alert] = enterprise.sanctions_alerts.all()
    sanctions_alert_clear(alert=alert, reason="Different registration number", actor=back_office)

    result = sanctions_list_load(path=write_sanctions_csv(SANCTIONS_CSV))

    assert result.alerts == []
    alert.refresh_from_db()
    assert alert.status == AlertStatus.CLEARED
    assert alert.entry is None and alert.entry_name == "Blackwater Maritime Trading Limited"  # snapshot survives


def test_confirm_freezes_an_approved_enterprise(make_enterprise, write_sanctions_csv, sanctions_list, back_office):
    from corporates.services import EnterpriseNotActive, enterprise_require_active

    enterprise = make_enterprise(legal_name="Søren Åkerlund Holdings")
    sanctions_list_load(path=write_sanctions_csv(SANCTIONS_CSV + "Soren Akerlund Holdings,,DK,TEST-EU\n"))
    [alert] = enterprise.sanctions_alerts.all()

    sanctions_alert_confirm(alert=alert, reason="Same person per passport copy", actor=back_office)

    enterprise.refresh_from_db()
    assert enterprise.status == EnterpriseStatus.FROZEN
    change = enterprise.status_changes.last()
    assert (change.to_status, change.actor) == ("frozen", back_office)
    assert alert.public_id in change.reason and "Same person per passport copy" in change.reason
    with pytest.raises(EnterpriseNotActive):
        enterprise_require_active(enterprise=enterprise)
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by, alert.resolution_reason) == (
        AlertStatus.CONFIRMED,
        back_office,
        "Same person per passport copy",
    )


def test_confirm_rejects_an_applicant(apply, sanctions_list, back_office):
    enterprise = apply(legal_name="Blackwater Maritime Trading Ltd").enterprise
    sanctions_alert_confirm(alert=enterprise.sanctions_alerts.get(), reason="True match", actor=back_office)
    enterprise.refresh_from_db()
    assert enterprise.status == EnterpriseStatus.REJECTED


def test_confirming_a_bank_account_holder_disables_the_account(make_enterprise, sanctions_list, back_office):
    enterprise = make_enterprise()
    account = bank_account_register(
        enterprise=enterprise, holder_name="Jose Nunez", bank_name="Banco", account_number="12345678", currency="USD"
    )
    sanctions_alert_confirm(alert=enterprise.sanctions_alerts.get(), reason="True match", actor=back_office)
    account.refresh_from_db()
    enterprise.refresh_from_db()
    assert account.status == BankAccountStatus.DISABLED
    assert enterprise.status == EnterpriseStatus.FROZEN


def test_a_resolved_alert_cannot_be_resolved_again(apply, sanctions_list, back_office):
    alert = apply(legal_name="Blackwater Maritime Trading Ltd").enterprise.sanctions_alerts.get()
    sanctions_alert_clear(alert=alert, reason="Different company", actor=back_office)
    with pytest.raises(SanctionsAlertNotOpen):
        sanctions_alert_confirm(alert=alert, reason="Changed my mind", actor=back_office)
    with pytest.raises(ReasonRequired):
        sanctions_alert_clear(
            alert=apply(legal_name="Blackwater Maritime").enterprise.sanctions_alerts.get(), reason=""
        )


@pytest.mark.parametrize(
    "text",
    [
        "name,country,list_source\nJohn Doe,US,X\n",  # wrong header
        "name,aliases,country,list_source\n",  # no entries
        "name,aliases,country,list_source\n,alias,US,X\n",  # no name
        "name,aliases,country,list_source\nJohn Doe,,US\n",  # missing column
        "name,aliases,country,list_source\nJohn Doe,,US,X,extra\n",  # extra column
    ],
)
def test_a_malformed_list_changes_nothing(sanctions_list, write_sanctions_csv, text):
    with pytest.raises(SanctionsListInvalid):
        sanctions_list_load(path=write_sanctions_csv(text))
    assert SanctionsListLoad.objects.count() == 1
    assert SanctionsEntry.objects.count() == 3


def test_load_sanctions_command_loads_the_shipped_list(apply, capsys):
    enterprise = apply(
        beneficial_owners=[OwnerInput(full_name="Anatoli Koriakin", nationality="RU", ownership_percent="30")]
    ).enterprise
    assert not enterprise.sanctions_alerts.exists()  # no list loaded yet

    call_command("load_sanctions")

    assert "1 new alert(s)" in capsys.readouterr().out
    assert SanctionsEntry.objects.filter(list_source__startswith="HL-DEMO").count() >= 10
    assert enterprise.sanctions_alerts.get().entry_name == "Anatoly Vasilievich Koryakin"


def test_load_sanctions_command_reports_a_bad_file(db, write_sanctions_csv, tmp_path):
    with pytest.raises(CommandError):
        call_command("load_sanctions", str(write_sanctions_csv("nonsense\n")))
    with pytest.raises(CommandError):
        call_command("load_sanctions", str(tmp_path / "missing.csv"))


@pytest.mark.django_db(transaction=True)
def test_a_party_created_during_a_reload_is_screened_against_the_new_list(write_sanctions_csv):
    """An applicant screened (old list) but not yet committed when a reload starts is still caught."""
    import threading
    import time

    from django.db import connection, transaction

    from corporates.sanctions import sanctions_screen_enterprise
    from tests.factories import EnterpriseFactory

    sanctions_list_load(path=write_sanctions_csv(SANCTIONS_CSV))
    screened, go = threading.Event(), threading.Event()
    created: dict = {}

    def applicant() -> None:
        try:
            with transaction.atomic():
                enterprise = EnterpriseFactory(legal_name="Crimson Lotus Shipping")
                created["enterprise"] = enterprise
                assert sanctions_screen_enterprise(enterprise=enterprise) == []  # not on the old list
                screened.set()
                go.wait(timeout=10)
        finally:
            connection.close()

    def reload() -> None:
        try:
            sanctions_list_load(path=write_sanctions_csv(SANCTIONS_CSV + "Crimson Lotus Shipping Co,,KP,TEST-UN\n"))
        finally:
            connection.close()

    first = threading.Thread(target=applicant)
    first.start()
    assert screened.wait(timeout=10)
    second = threading.Thread(target=reload)
    second.start()
    time.sleep(0.5)
    assert second.is_alive()  # the reload waits for the applicant's screening to commit
    go.set()
    first.join()
    second.join()

    alert = SanctionsAlert.objects.get(party_ref=created["enterprise"].public_id)
    assert alert.entry_name == "Crimson Lotus Shipping Co"


def test_a_list_is_read_once_per_load_and_a_reload_is_seen_at_once(
    make_enterprise, write_sanctions_csv, sanctions_list
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from corporates.sanctions import sanctions_screen_bank_account

    enterprise = make_enterprise()

    def register(number: str):
        return bank_account_register(
            enterprise=enterprise, holder_name="Harbour Clean Trading", bank_name="Banco", account_number=number,
            currency="HKD",
        )  # fmt: skip

    first = register("87654321")
    with CaptureQueriesContext(connection) as queries:
        assert sanctions_screen_bank_account(bank_account=first) == []
    assert not any("sanctionsentry" in query["sql"] for query in queries.captured_queries)

    sanctions_list_load(path=write_sanctions_csv(SANCTIONS_CSV + "Harbour Clean Trading,,HK,TEST-NEW\n"))
    second = register("87654322")  # screened at registration, against the list just loaded

    alert = enterprise.sanctions_alerts.get(party_ref=second.public_id)
    assert alert.entry_list_source == "TEST-NEW"

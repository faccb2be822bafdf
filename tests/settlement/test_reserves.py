"""Reserves: positions, reconciliation with banksim (a real process), and the signed attestation."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from settlement.deposits.models import ReserveAlert, ReserveAlertKind
from settlement.deposits.services import deposit_reference_for
from settlement.redemptions.services import Actor, redemption_request
from settlement.reserves import attestation_verify, reserves_reconcile, reserves_snapshot
from tests.settlement.mintredeem import *  # noqa: F403
from tests.settlement.mintredeem import assert_books_clean, minor

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_positions_explain_payouts_in_flight_and_suspense(
    rails, redeemer, eager_tasks, django_capture_on_commit_callbacks
):
    party = redeemer()
    rails.fund(party.enterprise, "1000.00")
    rails.fund(party.enterprise, "20.00", "USD")
    stray = rails.wire(amount="5.00", reference="HLUNKNOWN000")
    rails.deliver(rails.wait_event("inbound_wire.received", stray["id"]))
    with django_capture_on_commit_callbacks(execute=True):
        redemption = redemption_request(
            enterprise=party.enterprise,
            amount="100.00",
            currency="HKD",
            bank_account=party.account("HKD"),
            actor=Actor(user=party.maker),
        )

    hkd = reserves_snapshot().currencies["HKD"]  # the payout is made; its payout.paid not yet applied

    assert hkd.tokens_outstanding == minor("1000.00") == hkd.reserve_ledger
    assert hkd.wallets == minor("900.00") and hkd.in_transit == minor("100.00")
    assert hkd.payouts_in_flight == minor("100.00") and hkd.suspense_held == minor("5.00")
    assert hkd.reserve_custodian == minor("905.00") and hkd.difference == 0
    assert hkd.backing_ratio == Decimal("1.0000") and hkd.custodian_backing_ratio == Decimal("1.0000")
    rails.settle(redemption)
    after = reserves_snapshot()
    assert after.reconciled and after.currencies["HKD"].reserve_ledger == minor("900.00")
    assert after.currencies["USD"].tokens_outstanding == 2000 and after.currencies["CNH"].backing_ratio is None
    assert_books_clean()


def test_an_unexplained_difference_raises_one_alert(rails, make_enterprise):
    enterprise = make_enterprise()
    rails.fund(enterprise, "10.00")
    # The bank has the wire; we have not applied its event (it is still on its way).
    rails.wire(amount="3.21", reference=deposit_reference_for(enterprise=enterprise, currency="HKD").reference)

    result = reserves_reconcile(confirm_after_s=0)
    again = reserves_reconcile(confirm_after_s=0)

    assert not result.clean and result.snapshot.currencies["HKD"].difference == 321
    (alert,) = ReserveAlert.objects.all()
    assert alert.kind == ReserveAlertKind.RECONCILIATION and alert.currency == "HKD" and alert.difference == 321
    assert again.alerts == [alert]  # the same open alert, not a second one


def test_an_unreachable_custodian_is_reported_not_alerted(rails, make_enterprise, settings):
    rails.fund(make_enterprise(), "10.00")
    settings.BANK_RAILS_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.BANK_RAILS_MAX_RETRIES = 0

    result = reserves_reconcile(confirm_after_s=0)

    assert result.snapshot.custodian_error and not result.clean
    assert result.snapshot.currencies["HKD"].reserve_custodian is None
    assert ReserveAlert.objects.count() == 0


def test_attestation_for_today_is_signed_verifiable_and_readable(rails, make_enterprise, tmp_path):
    rails.fund(make_enterprise(), "1234.56")

    call_command("attest_reserves", "--date", timezone.localdate().isoformat(), "--output-dir", str(tmp_path))

    day = timezone.localdate().isoformat()
    document = json.loads((tmp_path / f"reserves-attestation-{day}.json").read_text())
    hkd = next(c for c in document["currencies"] if c["currency"] == "HKD")
    assert hkd["tokens_outstanding"] == hkd["reserve_ledger"] == {"amount": "1234.56", "currency": "HKD"}
    assert hkd["reserve_custodian"] == {"amount": "1234.56", "currency": "HKD"} and hkd["backing_ratio"] == "1.0000"
    assert document["ledger_verification"]["ok"] and document["custodian"]["reconciled"]
    assert attestation_verify(document=document)
    html = (tmp_path / f"reserves-attestation-{day}.html").read_text()
    assert "1234.56" in html and document["sign_off"]["sha256"] in html
    hkd["reserve_ledger"]["amount"] = "1234.57"  # any edit breaks the seal
    assert not attestation_verify(document=document)


def test_attestation_of_a_past_day_recomputes_the_ledger_as_it_stood(rails, make_enterprise, tmp_path):
    yesterday = timezone.localdate() - timedelta(days=1)
    rails.fund(make_enterprise(), "50.00")  # today: not in yesterday's position

    call_command("attest_reserves", "--date", yesterday.isoformat(), "--output-dir", str(tmp_path))

    document = json.loads((tmp_path / f"reserves-attestation-{yesterday.isoformat()}.json").read_text())
    assert all(c["tokens_outstanding"]["amount"] == "0.00" for c in document["currencies"])
    assert document["custodian"]["live"] is False
    with pytest.raises(CommandError):
        call_command("attest_reserves", "--date", "not-a-date", "--output-dir", str(tmp_path))

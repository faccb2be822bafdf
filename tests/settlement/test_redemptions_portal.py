"""Portal pages of mint and redeem: instructions, the redemption form with approve and cancel, reserves."""

from __future__ import annotations

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from corporates.onboarding.limits import enterprise_limits_set
from settlement.deposits.services import deposit_reference_for
from settlement.redemptions.models import Redemption, RedemptionState
from tests.factories import MembershipFactory
from tests.settlement.mintredeem import *  # noqa: F403
from tests.settlement.mintredeem import Redeemer, assert_books_clean, minor

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def signed_in(user) -> Client:
    """Signed in and past two-factor, as a member who can move money must be."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def test_deposit_page_shows_the_references(make_enterprise):
    enterprise = make_enterprise()
    viewer = MembershipFactory(enterprise=enterprise, role="viewer").user

    page = signed_in(viewer).get("/settlement/deposits/")

    assert page.status_code == 200
    for currency in ("HKD", "USD", "CNH"):
        assert deposit_reference_for(enterprise=enterprise, currency=currency).reference in page.content.decode()


def test_maker_requests_checker_approves_in_the_portal(
    rails, redeemer, eager_tasks, django_capture_on_commit_callbacks
):
    party: Redeemer = redeemer()
    rails.fund(party.enterprise, "800.00")
    enterprise_limits_set(
        enterprise=party.enterprise,
        currency="HKD",
        single_payment=None,
        daily_redemption=None,
        approval_threshold="100",
    )
    account = party.account("HKD")
    maker, checker = signed_in(party.maker), signed_in(party.checker)

    refused = maker.post("/settlement/redemptions/", {"amount": "800.01", "bank_account": account.pk})
    assert refused.status_code == 200 and "enough tokens" in refused.content.decode()
    made = maker.post("/settlement/redemptions/", {"amount": "300.00", "bank_account": account.pk})
    assert made.status_code == 302
    redemption = Redemption.objects.get()
    assert redemption.state == RedemptionState.AWAITING_APPROVAL
    listing = checker.get("/settlement/redemptions/").content.decode()
    assert f"/settlement/redemptions/{redemption.public_id}/approve/" in listing
    assert checker.post("/settlement/redemptions/", {"amount": "1.00", "bank_account": account.pk}).status_code == 403

    with django_capture_on_commit_callbacks(execute=True):
        checker.post(f"/settlement/redemptions/{redemption.public_id}/approve/")

    redemption = rails.settle(redemption)
    assert redemption.state == RedemptionState.PAID
    page = maker.get("/settlement/redemptions/").content.decode()
    assert "Paid" in page and "300.00" in page
    reserves = maker.get("/settlement/reserves/").content.decode()
    assert "500.00" in reserves and "1.0000" in reserves
    assert party.wallet() == minor("500.00")
    assert_books_clean()


def test_a_maker_cancels_and_a_maker_cannot_approve(rails, redeemer):
    party: Redeemer = redeemer()
    rails.fund(party.enterprise, "50.00")
    enterprise_limits_set(
        enterprise=party.enterprise, currency="HKD", single_payment=None, daily_redemption=None, approval_threshold="0"
    )
    maker = signed_in(party.maker)
    maker.post("/settlement/redemptions/", {"amount": "10.00", "bank_account": party.account("HKD").pk})
    redemption = Redemption.objects.get()

    assert maker.post(f"/settlement/redemptions/{redemption.public_id}/approve/").status_code == 403
    maker.post(f"/settlement/redemptions/{redemption.public_id}/cancel/")

    redemption.refresh_from_db()
    assert redemption.state == RedemptionState.CANCELLED

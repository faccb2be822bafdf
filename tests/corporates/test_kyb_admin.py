"""The back office in Django admin: every action goes through the services, with a mandatory reason."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from corporates.models import AlertStatus, BankAccountStatus, EnterpriseStatus
from corporates.onboarding.banking import bank_account_register
from corporates.onboarding.limits import limits_for
from corporates.onboarding.status import enterprise_review_start
from tests.factories import EnterpriseFactory

pytestmark = pytest.mark.django_db
ENTERPRISES = reverse("admin:corporates_enterprise_changelist")


@pytest.fixture
def admin_client(verified_client, back_office):
    # Admin lets staff in only past TOTP (tests/corporates/test_admin_two_factor.py).
    return verified_client(back_office)


def run_action(client, url, action, objects, reason=None):
    data = {"action": action, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects]}
    if reason is not None:
        data.update({"apply_reason": "1", "reason": reason})
    return client.post(url, data)


def test_review_queue_lists_under_review_first(admin_client, apply):
    approved = EnterpriseFactory(status=EnterpriseStatus.APPROVED)
    applied = apply().enterprise
    reviewing = apply().enterprise
    enterprise_review_start(enterprise=reviewing)
    listed = list(admin_client.get(ENTERPRISES).context["cl"].result_list)
    assert listed[:3] == [reviewing, applied, approved]


def test_approve_asks_for_a_reason_then_calls_the_service(admin_client, apply, back_office, platform):
    enterprise = apply().enterprise

    page = run_action(admin_client, ENTERPRISES, "approve", [enterprise])
    assert page.status_code == 200 and b'name="reason"' in page.content

    empty = run_action(admin_client, ENTERPRISES, "approve", [enterprise], reason="   ")
    assert empty.status_code == 200 and empty.context["form"].errors["reason"]
    enterprise.refresh_from_db()
    assert enterprise.status == EnterpriseStatus.APPLIED

    done = run_action(admin_client, ENTERPRISES, "approve", [enterprise], reason="Registry and UBOs verified")
    assert done.status_code == 302
    enterprise.refresh_from_db()
    assert enterprise.status == EnterpriseStatus.APPROVED
    last = enterprise.status_changes.last()
    assert (last.actor, last.reason) == (back_office, "Registry and UBOs verified")
    assert enterprise.accounts.count() == 3  # the approval hook opened the wallets


def test_a_refused_action_reports_the_error_and_changes_nothing(admin_client, make_enterprise):
    enterprise = make_enterprise()
    response = run_action(admin_client, ENTERPRISES, "reject", [enterprise], reason="too late")
    assert response.status_code == 302
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("invalid_status_transition" in m for m in messages)
    enterprise.refresh_from_db()
    assert enterprise.status == EnterpriseStatus.APPROVED


def test_freeze_and_unfreeze_from_admin(admin_client, make_enterprise):
    enterprise = make_enterprise()
    run_action(admin_client, ENTERPRISES, "freeze", [enterprise], reason="Suspicious pattern")
    enterprise.refresh_from_db()
    assert enterprise.status == EnterpriseStatus.FROZEN
    run_action(admin_client, ENTERPRISES, "unfreeze", [enterprise], reason="Explained by customer")
    enterprise.refresh_from_db()
    assert enterprise.status == EnterpriseStatus.APPROVED


def test_change_page_links_documents_through_the_authorising_view(admin_client, apply):
    enterprise = apply().enterprise
    response = admin_client.get(reverse("admin:corporates_enterprise_change", args=[enterprise.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    for document in enterprise.kyb_documents.all():
        assert reverse("corporates:kyb_document", args=[document.public_id]) in body
    assert "Application submitted" in body  # the audit trail
    assert enterprise.memberships.get().user.username in body  # the applicant, its first admin


READ_ONLY_INLINES = (
    "kyb_profile", "expected_volumes", "beneficial_owners", "kyb_documents", "sanctions_alerts", "bank_accounts",
    "memberships", "status_changes",
)  # fmt: skip


def test_limits_are_edited_in_admin(admin_client, make_enterprise):
    enterprise = make_enterprise()
    url = reverse("admin:corporates_enterprise_change", args=[enterprise.pk])
    data = {
        "limits-TOTAL_FORMS": "1",
        "limits-INITIAL_FORMS": "0",
        "limits-MIN_NUM_FORMS": "0",
        "limits-MAX_NUM_FORMS": "1000",
        "limits-0-currency": "USD",
        "limits-0-single_payment": "50000.00",
        "limits-0-daily_redemption": "",
        "limits-0-approval_threshold": "0.00",
    }
    for prefix in READ_ONLY_INLINES:
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context and response.context.get("errors")
    limits = limits_for(enterprise=enterprise, currency="USD")
    assert (limits.single_payment, limits.approval_threshold) == (Decimal("50000.00"), Decimal("0.00"))


def test_a_bad_limit_is_a_form_error_and_saves_nothing(admin_client, make_enterprise):
    enterprise = make_enterprise()
    url = reverse("admin:corporates_enterprise_change", args=[enterprise.pk])
    data = {
        "limits-TOTAL_FORMS": "1",
        "limits-INITIAL_FORMS": "0",
        "limits-MIN_NUM_FORMS": "0",
        "limits-MAX_NUM_FORMS": "1000",
        "limits-0-currency": "USD",
        "limits-0-single_payment": "-5.00",
    }
    for prefix in READ_ONLY_INLINES:
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert not enterprise.limits.exists()


def test_alerts_are_cleared_or_confirmed_in_admin(admin_client, make_enterprise, sanctions_list):
    url = reverse("admin:corporates_sanctionsalert_changelist")
    enterprise = make_enterprise()
    clean = bank_account_register(
        enterprise=enterprise, holder_name="Jose Nunez", bank_name="B", account_number="11112222", currency="USD"
    )
    flagged = make_enterprise(legal_name="Blackwater Maritime Trading Ltd")
    from corporates.sanctions import sanctions_screen_all

    sanctions_screen_all()
    clear_alert = enterprise.sanctions_alerts.get()
    confirm_alert = flagged.sanctions_alerts.get()

    run_action(admin_client, url, "clear", [clear_alert], reason="Customer's own account, DOB differs")
    run_action(admin_client, url, "confirm", [confirm_alert], reason="Matches the listed entity's registry no.")

    clear_alert.refresh_from_db()
    confirm_alert.refresh_from_db()
    flagged.refresh_from_db()
    clean.refresh_from_db()
    assert clear_alert.status == AlertStatus.CLEARED
    assert confirm_alert.status == AlertStatus.CONFIRMED
    assert flagged.status == EnterpriseStatus.FROZEN
    assert clean.status == BankAccountStatus.PENDING


def test_bank_accounts_are_verified_and_disabled_in_admin(admin_client, make_enterprise, back_office):
    url = reverse("admin:corporates_bankaccount_changelist")
    account = bank_account_register(
        enterprise=make_enterprise(), holder_name="Acme", bank_name="HSBC", account_number="12345678", currency="HKD"
    )
    admin_client.post(url, {"action": "verify", ACTION_CHECKBOX_NAME: [account.pk]})
    account.refresh_from_db()
    assert (account.status, account.verified_by) == (BankAccountStatus.VERIFIED, back_office)
    run_action(admin_client, url, "disable", [account], reason="Account closed at the bank")
    account.refresh_from_db()
    assert account.status == BankAccountStatus.DISABLED


def test_the_audit_trail_is_read_only(admin_client, apply):
    change = apply().enterprise.status_changes.get()
    url = reverse("admin:corporates_enterprisestatuschange_change", args=[change.pk])
    assert admin_client.get(url).status_code == 200
    admin_client.post(url, {"reason": "rewritten"})
    change.refresh_from_db()
    assert change.reason == "Application submitted"
    assert (
        admin_client.post(reverse("admin:corporates_enterprisestatuschange_delete", args=[change.pk])).status_code
        == 403
    )

"""Who may act is checked inside the KYB services, whatever the caller (portal, API, admin, a task).

Each refusal is ``role_not_permitted`` and changes nothing.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from corporates.api_keys import api_key_create, api_key_revoke
from corporates.models import (
    BankAccount,
    BankAccountStatus,
    EnterpriseLimit,
    EnterpriseStatus,
    KybDocument,
    MemberRole,
    SanctionsAlert,
)
from corporates.onboarding.applications import kyb_document_add
from corporates.onboarding.banking import bank_account_disable, bank_account_register, bank_account_verify
from corporates.onboarding.limits import enterprise_limits_set
from corporates.onboarding.status import (
    enterprise_approve,
    enterprise_freeze,
    enterprise_reject,
    enterprise_review_start,
    enterprise_unfreeze,
)
from corporates.permissions import RoleNotPermitted
from corporates.sanctions import sanctions_alert_clear, sanctions_alert_confirm
from tests.corporates.conftest import PDF_BYTES
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
NOT_ADMIN_ROLES = [MemberRole.MAKER, MemberRole.CHECKER, MemberRole.VIEWER]


@pytest.fixture
def enterprise(make_enterprise):
    return make_enterprise(legal_name="Victoria Harbour Trading Ltd")


@pytest.fixture
def other(make_enterprise):
    return make_enterprise(legal_name="Pearl River Components Co")


def member(enterprise, role):
    return MembershipFactory(enterprise=enterprise, role=role).user


def register(enterprise, actor, number="004123456789001"):
    return bank_account_register(
        enterprise=enterprise,
        holder_name="Victoria Harbour Trading Ltd",
        bank_name="HSBC Hong Kong",
        account_number=number,
        currency="HKD",
        actor=actor,
    )


def refused(call) -> RoleNotPermitted:
    with pytest.raises(RoleNotPermitted) as caught:
        call()
    assert caught.value.code == "role_not_permitted"
    return caught.value


# --- bank accounts: register -----------------------------------------------------------


def test_an_admin_of_the_enterprise_registers(enterprise):
    account = register(enterprise, member(enterprise, MemberRole.ADMIN))
    assert account.status == BankAccountStatus.PENDING


@pytest.mark.parametrize("role", NOT_ADMIN_ROLES)
def test_a_member_who_is_not_an_admin_registers_nothing(enterprise, role):
    refused(lambda: register(enterprise, member(enterprise, role)))
    assert not BankAccount.objects.exists()


def test_another_enterprises_admin_registers_nothing(enterprise, other):
    refused(lambda: register(enterprise, member(other, MemberRole.ADMIN)))
    assert not BankAccount.objects.exists()


def test_a_user_who_belongs_to_no_enterprise_registers_nothing(enterprise):
    refused(lambda: register(enterprise, UserFactory()))
    refused(lambda: register(enterprise, UserFactory(is_staff=True)))  # the back office does not register for them
    assert not BankAccount.objects.exists()


def test_the_role_is_read_afresh_not_from_the_callers_objects(enterprise):
    user = member(enterprise, MemberRole.ADMIN)
    user.membership.role = MemberRole.VIEWER  # demoted a moment ago, in another request
    user.membership.save(update_fields=["role"])
    user.membership.role = MemberRole.ADMIN  # the caller still holds the stale instance
    refused(lambda: register(enterprise, user))


def test_a_deactivated_admin_registers_nothing(enterprise):
    user = member(enterprise, MemberRole.ADMIN)
    user.is_active = False
    user.save(update_fields=["is_active"])
    refused(lambda: register(enterprise, user))


def key_for(enterprise, scopes):
    admin = member(enterprise, MemberRole.ADMIN)
    return api_key_create(enterprise=enterprise, name="ERP", scopes=scopes, created_by=admin).api_key


def test_an_api_key_registers_for_its_own_enterprise_with_the_redemptions_scope(enterprise, other):
    assert register(enterprise, key_for(enterprise, ["read", "redemptions"])).enterprise_id == enterprise.pk
    refused(lambda: register(enterprise, key_for(other, ["read", "redemptions"]), number="004123456789002"))
    refused(lambda: register(enterprise, key_for(enterprise, ["read", "payments"]), number="004123456789003"))
    revoked = key_for(enterprise, ["redemptions"])
    api_key_revoke(api_key=revoked, revoked_by=member(enterprise, MemberRole.ADMIN))
    refused(lambda: register(enterprise, revoked, number="004123456789004"))
    assert BankAccount.objects.count() == 1


# --- bank accounts: verify and disable -------------------------------------------------


@pytest.fixture
def pending(enterprise):
    return register(enterprise, member(enterprise, MemberRole.ADMIN))


@pytest.mark.parametrize("role", [MemberRole.ADMIN, MemberRole.CHECKER])
def test_an_enterprise_never_verifies_its_own_payee(enterprise, pending, role):
    refused(lambda: bank_account_verify(bank_account=pending, actor=member(enterprise, role)))
    pending.refresh_from_db()
    assert pending.status == BankAccountStatus.PENDING


def test_inactive_staff_verify_nothing(pending):
    refused(lambda: bank_account_verify(bank_account=pending, actor=UserFactory(is_staff=True, is_active=False)))


def test_back_office_staff_verify(pending):
    staff = UserFactory(is_staff=True)
    assert bank_account_verify(bank_account=pending, actor=staff).verified_by == staff


@pytest.mark.parametrize("role", NOT_ADMIN_ROLES)
def test_a_member_who_is_not_an_admin_disables_nothing(enterprise, pending, role):
    refused(lambda: bank_account_disable(bank_account=pending, reason="closed", actor=member(enterprise, role)))
    pending.refresh_from_db()
    assert pending.status == BankAccountStatus.PENDING


def test_another_enterprises_admin_disables_nothing(other, pending):
    refused(lambda: bank_account_disable(bank_account=pending, reason="closed", actor=member(other, MemberRole.ADMIN)))


def test_the_enterprises_admin_and_the_back_office_disable(enterprise, pending):
    disabled = bank_account_disable(bank_account=pending, reason="closed", actor=member(enterprise, MemberRole.ADMIN))
    assert disabled.status == BankAccountStatus.DISABLED
    second = register(enterprise, member(enterprise, MemberRole.ADMIN), number="004123456789009")
    staff = UserFactory(is_staff=True)
    assert bank_account_disable(bank_account=second, reason="fraud", actor=staff).status == BankAccountStatus.DISABLED


# --- KYB documents -----------------------------------------------------------------------


@pytest.fixture
def applied(apply):
    return apply()


def add_document(enterprise, actor):
    upload = SimpleUploadedFile("newer-bill.pdf", PDF_BYTES, content_type="application/pdf")
    return kyb_document_add(enterprise=enterprise, kind="proof_of_address", upload=upload, actor=actor)


@pytest.mark.parametrize("role", NOT_ADMIN_ROLES)
def test_only_an_admin_of_the_applicant_adds_documents(applied, role):
    before = KybDocument.objects.count()
    refused(lambda: add_document(applied.enterprise, member(applied.enterprise, role)))
    assert KybDocument.objects.count() == before


def test_another_applicants_admin_adds_no_document(apply, applied):
    stranger = apply().applicant
    before = applied.enterprise.kyb_documents.count()
    refused(lambda: add_document(applied.enterprise, stranger))
    assert applied.enterprise.kyb_documents.count() == before


def test_the_applicants_admin_and_the_back_office_add_documents(applied):
    assert add_document(applied.enterprise, applied.applicant).uploaded_by == applied.applicant
    staff = UserFactory(is_staff=True)
    assert add_document(applied.enterprise, staff).uploaded_by == staff


# --- back-office decisions: status, limits, alerts ------------------------------------


def test_status_decisions_refuse_a_user_who_is_not_staff(apply, enterprise):
    applicant = apply()
    admin_of_it = applicant.applicant
    for service in (enterprise_review_start, enterprise_approve):
        refused(lambda: service(enterprise=applicant.enterprise, reason="ok", actor=admin_of_it))
    refused(lambda: enterprise_reject(enterprise=applicant.enterprise, reason="no", actor=admin_of_it))
    applicant.enterprise.refresh_from_db()
    assert applicant.enterprise.status == EnterpriseStatus.APPLIED

    own_admin = member(enterprise, MemberRole.ADMIN)
    refused(lambda: enterprise_freeze(enterprise=enterprise, reason="hold", actor=own_admin))
    enterprise_freeze(enterprise=enterprise, reason="hold", actor=UserFactory(is_staff=True))
    refused(lambda: enterprise_unfreeze(enterprise=enterprise, reason="release", actor=own_admin))
    enterprise.refresh_from_db()
    assert enterprise.status == EnterpriseStatus.FROZEN
    assert enterprise.status_changes.filter(actor=own_admin).count() == 0


def test_limits_are_set_by_the_back_office_only(enterprise):
    def set_by(actor):
        return enterprise_limits_set(
            enterprise=enterprise,
            currency="HKD",
            single_payment="1.00",
            daily_redemption=None,
            approval_threshold="0.00",
            actor=actor,
        )

    refused(lambda: set_by(member(enterprise, MemberRole.ADMIN)))
    assert not EnterpriseLimit.objects.exists()
    assert set_by(UserFactory(is_staff=True)).single_payment == 1


def test_sanctions_alerts_are_decided_by_the_back_office_only(apply, sanctions_list):
    flagged = apply(legal_name="Blackwater Maritime Trading Limited")
    alert = SanctionsAlert.objects.get(enterprise=flagged.enterprise)
    refused(lambda: sanctions_alert_clear(alert=alert, reason="not them", actor=flagged.applicant))
    refused(lambda: sanctions_alert_confirm(alert=alert, reason="them", actor=flagged.applicant))
    alert.refresh_from_db()
    assert alert.status == "open"
    assert sanctions_alert_clear(alert=alert, reason="not them", actor=UserFactory(is_staff=True)).status == "cleared"

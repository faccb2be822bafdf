"""Two approvers at once (a checker in the portal, another admin's key): the obligation is approved once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from config.errors import DomainError
from corporates.api_keys import api_key_create
from corporates.models import MemberRole
from corporates.onboarding.limits import enterprise_limits_set
from settlement.obligations.models import Obligation
from settlement.obligations.services import obligation_approve, obligation_create
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_approvers_at_once_approve_once(make_enterprise):
    payer, payee = make_enterprise(), make_enterprise()
    enterprise_limits_set(
        enterprise=payer, currency="USD", single_payment="9000.00", daily_redemption=None, approval_threshold="100.00"
    )
    maker = MembershipFactory(enterprise=payer, role=MemberRole.MAKER).user
    checker = MembershipFactory(enterprise=payer, role=MemberRole.CHECKER).user
    admin = MembershipFactory(enterprise=payer, role=MemberRole.ADMIN).user
    key = api_key_create(enterprise=payer, name="erp", scopes=["payments"], created_by=admin).api_key
    obligation = obligation_create(
        payer=payer, payee=payee.public_id, amount="250.00", currency="USD",
        value_date=timezone.localdate(), external_reference="RACE-1", created_by=maker,
    )  # fmt: skip
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def approve(name, approver):
        try:
            barrier.wait()
            obligation_approve(obligation=Obligation.objects.get(pk=obligation.pk), approver=approver)
            outcomes[name] = "approved"
        except DomainError as exc:
            outcomes[name] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=args) for args in (("portal", checker), ("api", key))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes.values()) == ["approved", "obligation_not_approvable"]
    approved = Obligation.objects.get(pk=obligation.pk)
    winner = checker if outcomes["portal"] == "approved" else admin
    assert not approved.needs_approval and approved.approved_by == winner

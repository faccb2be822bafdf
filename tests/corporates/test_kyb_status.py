"""The status machine: allowed moves, refused moves, the audit trail, the one guard."""

import pytest

from corporates.models import EnterpriseStatus
from corporates.services import (
    EnterpriseNotActive,
    InvalidEnterpriseTransition,
    ReasonRequired,
    SanctionsAlertsOpen,
    enterprise_approve,
    enterprise_freeze,
    enterprise_reject,
    enterprise_require_active,
    enterprise_review_start,
    enterprise_unfreeze,
)
from settlement.ledger.models import Account, AccountKind
from tests.factories import EnterpriseFactory

pytestmark = pytest.mark.django_db
S = EnterpriseStatus


def trail(enterprise):
    return [(c.from_status, c.to_status, c.actor_label, c.reason) for c in enterprise.status_changes.all()]


def test_review_then_approve_records_who_when_why_and_opens_wallets(apply, back_office, platform):
    enterprise = apply().enterprise

    enterprise_review_start(enterprise=enterprise, reason="Documents complete", actor=back_office)
    enterprise_approve(enterprise=enterprise, reason="UBOs verified against registry", actor=back_office)

    enterprise.refresh_from_db()
    assert enterprise.status == S.APPROVED
    assert trail(enterprise)[1:] == [
        ("applied", "under_review", back_office.username, "Documents complete"),
        ("under_review", "approved", back_office.username, "UBOs verified against registry"),
    ]
    assert all(c.created_at for c in enterprise.status_changes.all())
    wallets = Account.objects.filter(enterprise=enterprise, kind=AccountKind.WALLET)
    assert sorted(wallets.values_list("currency", flat=True)) == ["CNH", "HKD", "USD"]
    enterprise_require_active(enterprise=enterprise)


def test_approving_an_applied_enterprise_records_the_review_step(platform, back_office):
    enterprise = EnterpriseFactory()
    enterprise_approve(enterprise=enterprise, reason="Reviewed and approved", actor=back_office)
    assert [(c.from_status, c.to_status) for c in enterprise.status_changes.all()] == [
        ("applied", "under_review"),
        ("under_review", "approved"),
    ]


def test_reject_is_final(apply, back_office):
    enterprise = apply().enterprise
    enterprise_reject(enterprise=enterprise, reason="Registry shows company dissolved", actor=back_office)
    assert enterprise.status == S.REJECTED
    for service in (enterprise_approve, enterprise_review_start, enterprise_freeze, enterprise_unfreeze):
        with pytest.raises(InvalidEnterpriseTransition) as caught:
            service(enterprise=enterprise, reason="try", actor=back_office)
        assert caught.value.code == "invalid_status_transition"
    enterprise.refresh_from_db()
    assert enterprise.status == S.REJECTED


def test_freeze_and_unfreeze(make_enterprise, back_office):
    enterprise = make_enterprise()
    enterprise_freeze(enterprise=enterprise, reason="Court order 123", actor=back_office)
    enterprise.refresh_from_db()
    with pytest.raises(EnterpriseNotActive) as caught:
        enterprise_require_active(enterprise=enterprise)
    assert caught.value.code == "enterprise_not_active"

    enterprise_unfreeze(enterprise=enterprise, reason="Order lifted", actor=back_office)
    enterprise.refresh_from_db()
    enterprise_require_active(enterprise=enterprise)
    assert [c.to_status for c in enterprise.status_changes.all()][-2:] == ["frozen", "approved"]


@pytest.mark.parametrize(
    ("setup", "service"),
    [
        ([], enterprise_freeze),  # applied cannot be frozen
        ([], enterprise_unfreeze),
        (["review"], enterprise_review_start),  # already under review
        (["review"], enterprise_freeze),
        (["approve"], enterprise_approve),  # already approved
        (["approve"], enterprise_reject),
        (["approve"], enterprise_unfreeze),  # not frozen
        (["approve"], enterprise_review_start),
        (["approve", "freeze"], enterprise_approve),  # frozen: unfreeze, never "approve" again
        (["approve", "freeze"], enterprise_freeze),
        (["approve", "freeze"], enterprise_reject),
    ],
)
def test_bad_transitions_raise_and_change_nothing(platform, back_office, setup, service):
    enterprise = EnterpriseFactory()
    steps = {
        "review": lambda: enterprise_review_start(enterprise=enterprise, actor=back_office),
        "approve": lambda: enterprise_approve(enterprise=enterprise, actor=back_office),
        "freeze": lambda: enterprise_freeze(enterprise=enterprise, reason="hold", actor=back_office),
    }
    for step in setup:
        steps[step]()
    enterprise.refresh_from_db()
    before = (enterprise.status, enterprise.status_changes.count())

    with pytest.raises(InvalidEnterpriseTransition):
        service(enterprise=enterprise, reason="attempt", actor=back_office)

    enterprise.refresh_from_db()
    assert (enterprise.status, enterprise.status_changes.count()) == before


@pytest.mark.parametrize("service", [enterprise_reject, enterprise_freeze, enterprise_approve])
def test_a_reason_is_mandatory(make_enterprise, back_office, service):
    enterprise = EnterpriseFactory() if service is not enterprise_freeze else make_enterprise()
    with pytest.raises(ReasonRequired) as caught:
        service(enterprise=enterprise, reason="   ", actor=back_office)
    assert caught.value.code == "reason_required"


@pytest.mark.parametrize("status", [S.APPLIED, S.UNDER_REVIEW, S.REJECTED, S.FROZEN])
def test_only_approved_enterprises_move_money(status):
    with pytest.raises(EnterpriseNotActive):
        enterprise_require_active(enterprise=EnterpriseFactory(status=status))


def test_open_sanctions_alerts_block_approval_and_unfreeze(apply, sanctions_list, back_office, platform):
    from corporates.sanctions import sanctions_alert_clear

    enterprise = apply(legal_name="Blackwater Maritime Trading Ltd").enterprise
    [alert] = enterprise.sanctions_alerts.all()
    with pytest.raises(SanctionsAlertsOpen) as caught:
        enterprise_approve(enterprise=enterprise, reason="looks fine", actor=back_office)
    assert caught.value.code == "sanctions_alerts_open"
    enterprise.refresh_from_db()
    assert enterprise.status == S.APPLIED  # the refused approval rolled back its review step too

    sanctions_alert_clear(alert=alert, reason="Different company: registry no. differs", actor=back_office)
    enterprise_approve(enterprise=enterprise, reason="Cleared", actor=back_office)
    assert enterprise.status == S.APPROVED


@pytest.mark.django_db(transaction=True)
def test_concurrent_decisions_on_one_enterprise_apply_once(platform):
    """Two reviewers act at once: the row lock lets exactly one decision through."""
    import threading

    from django.db import connection

    enterprise = EnterpriseFactory()
    enterprise_review_start(enterprise=enterprise)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def decide(service, reason):
        try:
            barrier.wait()
            service(enterprise=EnterpriseFactory._meta.model.objects.get(pk=enterprise.pk), reason=reason)
            outcomes.append(service.__name__)
        except InvalidEnterpriseTransition:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=(service, f"reviewer {n}"))
        for n, service in enumerate([enterprise_approve, enterprise_approve, enterprise_reject, enterprise_reject])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes).count("refused") == 3
    enterprise.refresh_from_db()
    decisions = enterprise.status_changes.filter(from_status=S.UNDER_REVIEW)
    assert [d.to_status for d in decisions] == [enterprise.status]
    wallets = Account.objects.filter(enterprise=enterprise, kind=AccountKind.WALLET).count()
    assert wallets == (3 if enterprise.status == S.APPROVED else 0)


def test_the_audit_trail_is_append_only_in_the_database(apply, back_office):
    from django.db import DatabaseError, transaction

    from corporates.models import EnterpriseStatusChange

    enterprise = apply().enterprise
    enterprise_review_start(enterprise=enterprise, reason="Start", actor=back_office)
    change = enterprise.status_changes.last()

    with pytest.raises(DatabaseError), transaction.atomic():
        EnterpriseStatusChange.objects.filter(pk=change.pk).update(reason="Nothing to see")
    with pytest.raises(DatabaseError), transaction.atomic():
        EnterpriseStatusChange.objects.filter(pk=change.pk).delete()

    # Deleting the reviewer's user only clears the link; the label still names them.
    back_office.delete()
    change.refresh_from_db()
    assert (change.actor, change.actor_label, change.reason) == (None, "reviewer@harbourline.example", "Start")


def test_the_guard_reads_the_database_not_a_stale_instance(make_enterprise, back_office):
    enterprise = make_enterprise()
    stale = type(enterprise).objects.get(pk=enterprise.pk)
    enterprise_freeze(enterprise=enterprise, reason="Hold", actor=back_office)
    assert stale.status == S.APPROVED
    with pytest.raises(EnterpriseNotActive):
        enterprise_require_active(enterprise=stale)


@pytest.mark.django_db(transaction=True)
def test_a_freeze_waits_for_money_movements_already_past_the_guard(platform):
    """Guard under FOR SHARE: a movement that passed it finishes before the freeze lands."""
    import threading
    import time

    from django.db import connection, transaction

    enterprise = enterprise_approve(enterprise=EnterpriseFactory())
    passed, release = threading.Event(), threading.Event()
    order: list[str] = []

    def movement() -> None:
        try:
            with transaction.atomic():
                enterprise_require_active(enterprise=enterprise)
                passed.set()
                release.wait(timeout=10)
                order.append("movement committed")
        finally:
            connection.close()

    def freeze() -> None:
        try:
            enterprise_freeze(enterprise=EnterpriseFactory._meta.model.objects.get(pk=enterprise.pk), reason="Hold")
            order.append("frozen")
        finally:
            connection.close()

    mover = threading.Thread(target=movement)
    mover.start()
    assert passed.wait(timeout=10)
    freezer = threading.Thread(target=freeze)
    freezer.start()
    time.sleep(0.5)
    assert freezer.is_alive()  # waiting for the movement's share lock
    release.set()
    mover.join()
    freezer.join()
    assert order == ["movement committed", "frozen"]
    with pytest.raises(EnterpriseNotActive):
        enterprise_require_active(enterprise=enterprise)

"""The enterprise status machine, and the one guard every money-moving service calls.

    applied ──► under_review ──► approved ◄──► frozen
                     │
                     └──► rejected

Every change locks the enterprise row, checks the transition, and records an
``EnterpriseStatusChange`` (who, when, why) in the same transaction. Decisions
are the back office's: a user ``actor`` must be staff (None is the platform). Approval
runs settings.ENTERPRISE_APPROVAL_HOOKS (the ledger opens the wallets) inside
that transaction too, so an enterprise is never approved without its wallets.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils.module_loading import import_string

from config.db import is_postgresql, run_in_transaction
from config.errors import DomainError
from corporates.models import Enterprise, EnterpriseStatus, EnterpriseStatusChange
from corporates.models.sanctions import AlertStatus, SanctionsAlert
from corporates.permissions import back_office_require

S = EnterpriseStatus

# Every allowed move, and nothing else.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.APPLIED: frozenset({S.UNDER_REVIEW}),
    S.UNDER_REVIEW: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.FROZEN}),
    S.FROZEN: frozenset({S.APPROVED}),
    S.REJECTED: frozenset(),
}

SYSTEM_ACTOR = "system"


class EnterpriseNotActive(DomainError):
    code = "enterprise_not_active"
    title = "The enterprise is not approved, or is frozen, and cannot move money."
    http_status = 403


class InvalidEnterpriseTransition(DomainError):
    code = "invalid_status_transition"
    title = "The enterprise cannot move to that status from its current one."


class ReasonRequired(DomainError):
    code = "reason_required"
    title = "A reason is required for this decision."
    http_status = 400


class SanctionsAlertsOpen(DomainError):
    code = "sanctions_alerts_open"
    title = "The enterprise has sanctions alerts awaiting review."


def enterprise_require_active(*, enterprise: Enterprise, locked_status: str | None = None) -> None:
    """Raise ``EnterpriseNotActive`` unless the enterprise may move money.

    The single guard: every money-moving service calls it (for the payer, and
    for the payee where money arrives) before touching the ledger, inside its
    transaction. It reads the status from the database, not from the caller's
    instance, which may be stale. On PostgreSQL, inside a transaction, it holds
    a FOR SHARE lock on the enterprise row until that transaction ends: money
    movements do not block each other, but a freeze (FOR UPDATE) waits for the
    ones already past this guard, and every later one sees the freeze.

    ``locked_status``: the status the caller has just read in this transaction
    with the row locked ``FOR NO KEY UPDATE`` or stronger (a lock a freeze
    waits for too), so the guard need not read and lock it again.
    """
    if locked_status is not None:
        status = locked_status
    elif is_postgresql() and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT status FROM corporates_enterprise WHERE id = %s FOR SHARE", [enterprise.pk])
            row = cursor.fetchone()
        status = row[0] if row else None
    else:
        status = Enterprise.objects.filter(pk=enterprise.pk).values_list("status", flat=True).first()
    if status is not None:
        enterprise.status = status
    if status is None or not enterprise.can_move_money:
        raise EnterpriseNotActive(f"{enterprise.legal_name} is {enterprise.get_status_display().lower()}.")


def actor_label(actor: AbstractBaseUser | None) -> str:
    return actor.get_username() if actor is not None else SYSTEM_ACTOR


def status_change_record(
    *, enterprise: Enterprise, from_status: str, to_status: str, reason: str, actor: AbstractBaseUser | None
) -> EnterpriseStatusChange:
    """Insert one audit row. Callers hold the enterprise's lock (or just created it)."""
    return EnterpriseStatusChange.objects.create(
        enterprise=enterprise,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        actor=actor,
        actor_label=actor_label(actor),
    )


def _decider_require(actor: AbstractBaseUser | None) -> None:
    # The views and admin already restrict these; the service holds whatever the caller.
    if actor is not None:
        back_office_require(actor=actor)


def reason_require(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired()
    return reason


def _transition(
    *,
    enterprise: Enterprise,
    to_status: str,
    reason: str,
    actor: AbstractBaseUser | None,
    from_statuses: Iterable[str],
) -> Enterprise:
    """Lock, check, change, record. Joins the caller's transaction (no savepoint).

    ``from_statuses`` narrows TRANSITIONS to what the calling service means:
    "approve" is not "unfreeze", though both end in ``approved``.
    """
    locked = Enterprise.objects.select_for_update().get(pk=enterprise.pk)
    if locked.status not in from_statuses or to_status not in TRANSITIONS[locked.status]:
        raise InvalidEnterpriseTransition(
            f"Cannot move {locked.legal_name} from {locked.status} to {to_status}.",
            from_status=locked.status,
            to_status=to_status,
        )
    from_status = locked.status
    locked.status = to_status
    locked.save(update_fields=["status", "updated_at"])
    status_change_record(enterprise=locked, from_status=from_status, to_status=to_status, reason=reason, actor=actor)
    enterprise.status = locked.status
    return locked


def _require_no_open_alerts(enterprise: Enterprise) -> None:
    if SanctionsAlert.objects.filter(enterprise=enterprise, status=AlertStatus.OPEN).exists():
        raise SanctionsAlertsOpen(f"{enterprise.legal_name} has open sanctions alerts; review them first.")


def enterprise_create(*, legal_name: str, registration_number: str, jurisdiction: str) -> Enterprise:
    """A bare enterprise in ``applied`` (demo data, tests). Applicants go through ``enterprise_apply``."""

    def create() -> Enterprise:
        enterprise = Enterprise.objects.create(
            legal_name=legal_name.strip(),
            registration_number=registration_number.strip(),
            jurisdiction=jurisdiction.strip().upper(),
        )
        status_change_record(
            enterprise=enterprise, from_status="", to_status=S.APPLIED, reason="Enterprise created", actor=None
        )
        return enterprise

    return run_in_transaction(create)


def enterprise_review_start(
    *, enterprise: Enterprise, reason: str = "Review started", actor: AbstractBaseUser | None = None
) -> Enterprise:
    """applied → under_review."""
    reason = reason_require(reason)
    _decider_require(actor)
    return run_in_transaction(
        lambda: _transition(
            enterprise=enterprise, to_status=S.UNDER_REVIEW, reason=reason, actor=actor, from_statuses={S.APPLIED}
        )
    )


def _run_approval_hooks(enterprise: Enterprise) -> None:
    # Approval opens the enterprise's wallets. The ledger lives in settlement,
    # which corporates must not import; settings name the hooks instead.
    for dotted in settings.ENTERPRISE_APPROVAL_HOOKS:
        import_string(dotted)(enterprise=enterprise)


def _review_on_the_spot(locked: Enterprise, reason: str, actor: AbstractBaseUser | None) -> None:
    # A decision on an enterprise still in ``applied`` records the review it
    # went through first (applied → under_review), so the trail never skips a step.
    if locked.status == S.APPLIED:
        _transition(enterprise=locked, to_status=S.UNDER_REVIEW, reason=reason, actor=actor, from_statuses={S.APPLIED})


def enterprise_approve(
    *, enterprise: Enterprise, reason: str = "KYB review passed", actor: AbstractBaseUser | None = None
) -> Enterprise:
    """under_review (or applied) → approved, opening the wallets in the same transaction.

    Open sanctions alerts block approval. A frozen enterprise is unfrozen with
    ``enterprise_unfreeze``, never approved again.
    """
    reason = reason_require(reason)
    _decider_require(actor)

    def approve() -> Enterprise:
        locked = Enterprise.objects.select_for_update().get(pk=enterprise.pk)
        # Every check before the first write: a caller's outer transaction may
        # carry on after our refusal, and must find nothing half-done.
        if locked.status in (S.APPLIED, S.UNDER_REVIEW):
            _require_no_open_alerts(locked)
        _review_on_the_spot(locked, reason, actor)
        approved = _transition(
            enterprise=locked, to_status=S.APPROVED, reason=reason, actor=actor, from_statuses={S.UNDER_REVIEW}
        )
        _run_approval_hooks(approved)
        return approved

    approved = run_in_transaction(approve)
    enterprise.status = approved.status
    return approved


def enterprise_reject(*, enterprise: Enterprise, reason: str, actor: AbstractBaseUser | None = None) -> Enterprise:
    """under_review (or applied) → rejected. Final."""
    reason = reason_require(reason)
    _decider_require(actor)

    def reject() -> Enterprise:
        locked = Enterprise.objects.select_for_update().get(pk=enterprise.pk)
        _review_on_the_spot(locked, reason, actor)
        return _transition(
            enterprise=locked, to_status=S.REJECTED, reason=reason, actor=actor, from_statuses={S.UNDER_REVIEW}
        )

    rejected = run_in_transaction(reject)
    enterprise.status = rejected.status
    return rejected


def enterprise_freeze(*, enterprise: Enterprise, reason: str, actor: AbstractBaseUser | None = None) -> Enterprise:
    """approved → frozen: from the next call on, ``enterprise_require_active`` refuses it."""
    reason = reason_require(reason)
    _decider_require(actor)
    return run_in_transaction(
        lambda: _transition(
            enterprise=enterprise, to_status=S.FROZEN, reason=reason, actor=actor, from_statuses={S.APPROVED}
        )
    )


def enterprise_unfreeze(*, enterprise: Enterprise, reason: str, actor: AbstractBaseUser | None = None) -> Enterprise:
    """frozen → approved, unless sanctions alerts still await review."""
    reason = reason_require(reason)
    _decider_require(actor)

    def unfreeze() -> Enterprise:
        locked = Enterprise.objects.select_for_update().get(pk=enterprise.pk)
        if locked.status == S.FROZEN:
            _require_no_open_alerts(locked)
        return _transition(
            enterprise=locked, to_status=S.APPROVED, reason=reason, actor=actor, from_statuses={S.FROZEN}
        )

    unfrozen = run_in_transaction(unfreeze)
    enterprise.status = unfrozen.status
    return unfrozen

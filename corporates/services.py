"""Writes on enterprises. Every state change goes through here (portal, API, admin alike)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from config.errors import DomainError
from corporates.models import Enterprise, EnterpriseStatus


class EnterpriseNotActive(DomainError):
    code = "enterprise_not_active"
    title = "The enterprise is not approved, or is frozen, and cannot move money."
    http_status = 403


class InvalidEnterpriseTransition(DomainError):
    code = "invalid_status_transition"
    title = "The enterprise cannot move to that status from its current one."


def enterprise_require_active(*, enterprise: Enterprise) -> None:
    """Raise ``EnterpriseNotActive`` unless the enterprise may move money."""
    if not enterprise.can_move_money:
        raise EnterpriseNotActive(f"{enterprise.legal_name} is {enterprise.get_status_display().lower()}.")


def enterprise_create(*, legal_name: str, registration_number: str, jurisdiction: str) -> Enterprise:
    return Enterprise.objects.create(
        legal_name=legal_name, registration_number=registration_number, jurisdiction=jurisdiction.upper()
    )


def _run_approval_hooks(enterprise: Enterprise) -> None:
    # Approval opens the enterprise's wallets. The ledger lives in settlement,
    # which corporates must not import; settings name the hooks instead.
    for dotted in settings.ENTERPRISE_APPROVAL_HOOKS:
        import_string(dotted)(enterprise=enterprise)


@transaction.atomic
def enterprise_approve(*, enterprise: Enterprise) -> Enterprise:
    locked = Enterprise.objects.select_for_update().get(pk=enterprise.pk)
    if locked.status not in (EnterpriseStatus.APPLIED, EnterpriseStatus.UNDER_REVIEW):
        raise InvalidEnterpriseTransition(f"Cannot approve an enterprise that is {locked.status}.")
    locked.status = EnterpriseStatus.APPROVED
    locked.save(update_fields=["status", "updated_at"])
    _run_approval_hooks(locked)
    return locked

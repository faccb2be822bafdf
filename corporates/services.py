"""Writes on enterprises. Every state change goes through here (portal, API, admin alike).

The KYB services live in ``corporates.onboarding`` (split by sub-domain);
this module re-exports them so that every caller keeps importing from
``corporates.services``.
"""

from __future__ import annotations

from corporates.onboarding.status import (
    EnterpriseNotActive,
    InvalidEnterpriseTransition,
    ReasonRequired,
    SanctionsAlertsOpen,
    enterprise_approve,
    enterprise_create,
    enterprise_freeze,
    enterprise_reject,
    enterprise_require_active,
    enterprise_review_start,
    enterprise_unfreeze,
)

__all__ = [
    "EnterpriseNotActive",
    "InvalidEnterpriseTransition",
    "ReasonRequired",
    "SanctionsAlertsOpen",
    "enterprise_approve",
    "enterprise_create",
    "enterprise_freeze",
    "enterprise_reject",
    "enterprise_require_active",
    "enterprise_review_start",
    "enterprise_unfreeze",
]

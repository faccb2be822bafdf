"""Reads on redemptions: the enterprise's list, and the back office's deadlines at risk or late."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from corporates.models import Enterprise
from settlement.redemptions.models import Redemption, RedemptionState

UNPAID = (RedemptionState.PROCESSING,)


def redemptions_for(*, enterprise: Enterprise) -> QuerySet[Redemption]:
    return Redemption.objects.filter(enterprise=enterprise).select_related("bank_account")


def redemptions_late(*, now: datetime | None = None) -> QuerySet[Redemption]:
    """Approved, not yet paid, and past their deadline."""
    return Redemption.objects.filter(state__in=UNPAID, deadline_at__lt=now or timezone.now())


def redemptions_at_risk(*, now: datetime | None = None) -> QuerySet[Redemption]:
    """Approved, not yet paid, with the deadline within REDEMPTION_AT_RISK_HOURS."""
    now = now or timezone.now()
    horizon = now + timedelta(hours=settings.REDEMPTION_AT_RISK_HOURS)
    return Redemption.objects.filter(state__in=UNPAID, deadline_at__gte=now, deadline_at__lt=horizon)


def deadline_status(redemption: Redemption, *, now: datetime | None = None) -> str:
    """'late', 'at risk', 'on time' (unpaid), or '' once paid, failed or never approved."""
    if redemption.state not in UNPAID or redemption.deadline_at is None:
        return ""
    now = now or timezone.now()
    if redemption.deadline_at < now:
        return "late"
    if redemption.deadline_at < now + timedelta(hours=settings.REDEMPTION_AT_RISK_HOURS):
        return "at risk"
    return "on time"

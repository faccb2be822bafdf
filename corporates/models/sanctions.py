"""Sanctions lists and the alerts that screening raises.

A list load replaces every entry at once; alerts keep a snapshot of the entry
they matched, so the back office's decision stays readable after a reload.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from config.ids import public_id_factory
from corporates.models.enterprise import Enterprise


class SanctionsListLoad(models.Model):
    loaded_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=500, help_text="The file the list was loaded from")
    sha256 = models.CharField(max_length=64)
    entry_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["-loaded_at"]
        get_latest_by = "loaded_at"

    def __str__(self) -> str:
        return f"{self.source} ({self.entry_count} entries, {self.loaded_at:%Y-%m-%d %H:%M})"


class SanctionsEntry(models.Model):
    load = models.ForeignKey(SanctionsListLoad, on_delete=models.CASCADE, related_name="entries")
    name = models.CharField(max_length=300)
    aliases = models.JSONField(default=list, blank=True)
    country = models.CharField(max_length=64, blank=True)
    list_source = models.CharField(max_length=100)

    class Meta:
        verbose_name_plural = "sanctions entries"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.list_source})"


class PartyKind(models.TextChoices):
    ENTERPRISE = "enterprise", "Enterprise (applicant)"
    BENEFICIAL_OWNER = "beneficial_owner", "Beneficial owner"
    BANK_ACCOUNT_HOLDER = "bank_account_holder", "Bank-account holder"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLEARED = "cleared", "Cleared (false positive)"
    CONFIRMED = "confirmed", "Confirmed"


class SanctionsAlert(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("sal"), editable=False)
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="sanctions_alerts")
    party_kind = models.CharField(max_length=32, choices=PartyKind.choices)
    party_ref = models.CharField(max_length=32, help_text="Public id of the screened party (ent_, bo_, ba_)")
    screened_name = models.CharField(max_length=300)
    entry = models.ForeignKey(SanctionsEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Snapshot of the entry: a reload deletes entries, the alert must still say what it matched.
    entry_name = models.CharField(max_length=300)
    entry_country = models.CharField(max_length=64, blank=True)
    entry_list_source = models.CharField(max_length=100)
    matched_name = models.CharField(max_length=300, help_text="The entry's name or alias that matched")
    score = models.DecimalField(max_digits=5, decimal_places=2)
    # Identifies "this party's name against this listed name": a reload that finds
    # the same match again does not raise a second alert (nor undo a clearance).
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["party_ref", "fingerprint"], name="sanctions_alert_once_per_match"),
            models.CheckConstraint(condition=Q(status__in=AlertStatus.values), name="sanctions_alert_status_valid"),
            models.CheckConstraint(condition=Q(party_kind__in=PartyKind.values), name="sanctions_alert_party_valid"),
            models.CheckConstraint(
                condition=Q(status=AlertStatus.OPEN) | (Q(resolved_at__isnull=False) & ~Q(resolution_reason="")),
                name="sanctions_alert_resolution_recorded",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.screened_name} ~ {self.entry_name} ({self.score})"

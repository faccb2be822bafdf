"""Enterprises and their members.

An enterprise moves money only while it is approved (and therefore not
frozen); every money-moving service asks ``Enterprise.can_move_money``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from djmoney.models.fields import MoneyField

from config import money
from config.ids import public_id_factory


class EnterpriseStatus(models.TextChoices):
    APPLIED = "applied", "Applied"
    UNDER_REVIEW = "under_review", "Under review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    FROZEN = "frozen", "Frozen"


class Enterprise(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("ent"), editable=False)
    legal_name = models.CharField(max_length=200)
    registration_number = models.CharField(max_length=64)
    jurisdiction = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 country code")
    status = models.CharField(max_length=16, choices=EnterpriseStatus.choices, default=EnterpriseStatus.APPLIED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["legal_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["jurisdiction", "registration_number"], name="enterprise_registration_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=EnterpriseStatus.values), name="enterprise_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.legal_name} ({self.public_id})"

    @property
    def can_move_money(self) -> bool:
        return self.status == EnterpriseStatus.APPROVED


class MemberRole(models.TextChoices):
    ADMIN = "admin", "Admin"
    MAKER = "maker", "Maker"
    CHECKER = "checker", "Checker"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    """A portal user belongs to exactly one enterprise, with one role."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=16, choices=MemberRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=MemberRole.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} at {self.enterprise.legal_name}"


class ExpectedVolume(models.Model):
    """What an applicant expects to move per month in one currency (declared at application)."""

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="expected_volumes")
    monthly_volume = MoneyField(max_digits=20, decimal_places=2, currency_choices=money.CURRENCY_CHOICES)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enterprise", "monthly_volume_currency"], name="expected_volume_one_per_ccy"
            ),
            models.CheckConstraint(
                condition=models.Q(monthly_volume_currency__in=money.CURRENCY_CODES),
                name="expected_volume_currency_valid",
            ),
            models.CheckConstraint(condition=models.Q(monthly_volume__gt=0), name="expected_volume_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.enterprise.legal_name}: {self.monthly_volume} / month"

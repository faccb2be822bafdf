"""KYB: what an enterprise declares when it applies, and what the back office decides.

The ``Enterprise`` row carries the status; everything here explains it: the
application's details (profile, beneficial owners, documents), the audit
trail of every status change (who, when, why) and the limits the back office
sets. Only ``corporates.onboarding`` writes these rows.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q
from django.utils import timezone

from config import money
from config.ids import public_id_factory
from corporates.models.enterprise import Enterprise, EnterpriseStatus


class PrivateDocumentStorage(FileSystemStorage):
    """KYB documents on local disk under MEDIA_ROOT, with no public URL.

    The files are only ever read through the authorising view
    (``corporates.views_onboarding.kyb_document_download``); refusing ``url()``
    makes any accidental link to a public media URL fail loudly.
    """

    def url(self, name: str | None) -> str:
        raise NotImplementedError("KYB documents have no public URL; link the authorising view instead.")


def private_document_storage() -> PrivateDocumentStorage:
    # A callable, so migrations do not freeze a path; MEDIA_ROOT is read lazily.
    return _PRIVATE_STORAGE


_PRIVATE_STORAGE = PrivateDocumentStorage()


class KybProfile(models.Model):
    """The application's details beyond the enterprise's name and registration."""

    enterprise = models.OneToOneField(Enterprise, on_delete=models.CASCADE, related_name="kyb_profile")
    registered_address = models.TextField(max_length=500)
    lei = models.CharField("LEI", max_length=20, unique=True, help_text="ISO 17442 Legal Entity Identifier")
    contact_name = models.CharField(max_length=200)
    contact_email = models.EmailField()
    contact_phone = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "KYB profile"
        constraints = [
            # The last line of defence behind corporates.lei (which also checks the check digits).
            models.CheckConstraint(condition=Q(lei__regex=r"^[0-9A-Z]{18}[0-9]{2}$"), name="kyb_profile_lei_shape"),
        ]

    def __str__(self) -> str:
        return f"KYB profile of {self.enterprise.legal_name}"


class BeneficialOwner(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("bo"), editable=False)
    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="beneficial_owners")
    full_name = models.CharField(max_length=200)
    nationality = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 country code")
    ownership_percent = models.DecimalField(max_digits=5, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ownership_percent", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ownership_percent__gt=0) & Q(ownership_percent__lte=100),
                name="beneficial_owner_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.ownership_percent}%)"


class DocumentKind(models.TextChoices):
    CERTIFICATE_OF_INCORPORATION = "certificate_of_incorporation", "Certificate of incorporation"
    PROOF_OF_ADDRESS = "proof_of_address", "Proof of address"


# Content types we accept, decided from the file's first bytes (never from its name).
DOCUMENT_CONTENT_TYPES = ("application/pdf", "image/png", "image/jpeg")


class KybDocument(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("doc"), editable=False)
    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="kyb_documents")
    kind = models.CharField(max_length=32, choices=DocumentKind.choices)
    file = models.FileField(storage=private_document_storage, max_length=255)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=32)
    size_bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "KYB document"
        ordering = ["kind", "uploaded_at"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=DocumentKind.values), name="kyb_document_kind_valid"),
            models.CheckConstraint(
                condition=Q(content_type__in=DOCUMENT_CONTENT_TYPES), name="kyb_document_content_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.original_name}"


class EnterpriseStatusChange(models.Model):
    """One row per status change: the audit trail shown in admin and on the status page.

    Rows are only ever inserted (by ``corporates.onboarding.status``); admin shows them read-only.
    """

    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="status_changes")
    from_status = models.CharField(max_length=16, blank=True, help_text="Empty for the application itself")
    to_status = models.CharField(max_length=16, choices=EnterpriseStatus.choices)
    reason = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too, so the trail still says who acted if the user is deleted.
    actor_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(to_status__in=EnterpriseStatus.values), name="status_change_to_status_valid"
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="status_change_reason_required"),
        ]

    def __str__(self) -> str:
        return f"{self.enterprise.legal_name}: {self.from_status or '—'} → {self.to_status}"

    @property
    def from_status_label(self) -> str:
        return EnterpriseStatus(self.from_status).label if self.from_status else "—"


class EnterpriseLimit(models.Model):
    """Per-enterprise, per-currency overrides of the default limits (settings.KYB_DEFAULT_LIMITS).

    An empty field means "the default". Read the effective limits with
    ``corporates.onboarding.limits.limits_for``, never from this table.
    """

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="limits")
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    single_payment = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    daily_redemption = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    approval_threshold = models.DecimalField(
        max_digits=20,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Amounts above this need a second person (checker) to approve.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enterprise", "currency"], name="enterprise_limit_one_per_ccy"),
            models.CheckConstraint(
                condition=Q(currency__in=money.CURRENCY_CODES), name="enterprise_limit_currency_valid"
            ),
            models.CheckConstraint(
                condition=Q(single_payment__isnull=True) | Q(single_payment__gt=0),
                name="enterprise_limit_single_payment_positive",
            ),
            models.CheckConstraint(
                condition=Q(daily_redemption__isnull=True) | Q(daily_redemption__gt=0),
                name="enterprise_limit_daily_redemption_positive",
            ),
            models.CheckConstraint(
                condition=Q(approval_threshold__isnull=True) | Q(approval_threshold__gte=0),
                name="enterprise_limit_threshold_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.enterprise.legal_name} limits in {self.currency}"

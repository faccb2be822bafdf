"""Webhooks: endpoints an enterprise registers, events, and each delivery with its attempts.

An event is written in the same transaction as the change it announces, with
one delivery per subscribed endpoint; delivery starts after commit. Every
HTTP attempt is kept (status code, latency, error) so that the enterprise and
the back office can see what happened and re-send.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from config.ids import public_id_factory
from corporates.models.enterprise import Enterprise


class WebhookEndpoint(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("we"), editable=False)
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True, default="")
    event_types = models.JSONField(
        default=list, help_text='Subscribed types: exact ("fx.quote.accepted"), prefix ("fx.*") or "*".'
    )
    # Kept in the clear: signing needs it. Shown to the enterprise at creation and when rolled.
    secret = models.CharField(max_length=64)
    # After a roll, the secret before it still signs (a second v1 in the header)
    # until it expires, so that receivers can switch without losing an event.
    previous_secret = models.CharField(max_length=64, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted endpoints keep their history.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.url} ({self.public_id})"

    @property
    def is_active(self) -> bool:
        return self.deleted_at is None

    def signing_secrets(self, now) -> list[str]:
        """The secrets that sign a delivery now: the current one, then the previous one until it expires."""
        if self.previous_secret and self.previous_secret_expires_at and now < self.previous_secret_expires_at:
            return [self.secret, self.previous_secret]
        return [self.secret]


class WebhookEvent(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("evt"), editable=False)
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="webhook_events")
    type = models.CharField(max_length=100)
    data = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["enterprise", "-created_at"], name="webhook_event_ent_created_idx")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (retries exhausted)"
    CANCELLED = "cancelled", "Cancelled (endpoint deleted)"


class WebhookDelivery(models.Model):
    """One event to one endpoint; retried until it succeeds or its retry window closes."""

    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("whd"), editable=False)
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When the next attempt is due (or the claim of a running one expires)."
    )
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    is_resend = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="webhook_delivery_status_valid")
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due_idx")
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.event.type} → {self.endpoint.url} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP POST of a delivery: what the receiver answered, how fast, or why it failed."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    error = models.CharField(max_length=500, blank=True, default="")
    response_excerpt = models.CharField(max_length=500, blank=True, default="")
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_unique")]

    def __str__(self) -> str:
        return f"{self.delivery.public_id} #{self.number}: {self.status_code or self.error}"

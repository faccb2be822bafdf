"""ERP API access: API keys and the idempotency records of API POSTs.

An API key belongs to one enterprise and carries scopes. Its secret is shown
once, at creation; only its public ``prefix`` (to find it) and a SHA-256 hash
of the whole key (to check it) are stored. Keys are random and long, so a
plain hash is enough: there is nothing to brute-force the way there is with a
password.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from config.ids import public_id_factory
from corporates.models.enterprise import Enterprise


class ApiScope(models.TextChoices):
    READ = "read", "Read"
    PAYMENTS = "payments", "Payments"
    FX = "fx", "FX"
    REDEMPTIONS = "redemptions", "Redemptions"
    # Registering or deleting a webhook endpoint, or re-sending events, decides
    # where the enterprise's data goes: more than a read-only key may do.
    WEBHOOKS = "webhooks", "Webhooks"


class ApiKey(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("key"), editable=False)
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100)
    scopes = models.JSONField(default=list, help_text="Subset of read, payments, fx, redemptions, webhooks.")
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the key, to find it.")
    secret_hash = models.CharField(max_length=64, help_text="SHA-256 (hex) of the whole key.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotencyStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"


class IdempotencyRecord(models.Model):
    """The first response to an API POST with a given ``Idempotency-Key``, per enterprise.

    The unique constraint is the lock: of concurrent requests with one key,
    one inserts the record and executes; the others find it and either replay
    the stored response or are told the first is still running.
    """

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of method, path, body and key owner.")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=IdempotencyStatus.choices, default=IdempotencyStatus.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    response_content_type = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enterprise", "key"], name="idempotency_key_unique_per_enterprise"),
            models.CheckConstraint(condition=Q(status__in=IdempotencyStatus.values), name="idempotency_status_valid"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_at_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"

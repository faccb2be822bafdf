"""Invitations: how an enterprise admin brings a new member in.

The link carries a random token; only its SHA-256 is stored, so a database
read does not hand out working links. An invitation is used once, before it
expires, and an admin may revoke it (inviting the same address again revokes
the earlier link).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from config.ids import public_id_factory
from corporates.models.enterprise import Enterprise, MemberRole


class Invitation(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("inv"), editable=False)
    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=MemberRole.choices)
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the link's token")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=MemberRole.values), name="invitation_role_valid"),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="invitation_not_accepted_and_revoked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} as {self.role} at {self.enterprise.legal_name}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None

"""Corporates models, one module per sub-domain; import every model here."""

from corporates.models.enterprise import (
    Enterprise,
    EnterpriseStatus,
    ExpectedVolume,
    MemberRole,
    Membership,
)

__all__ = ["Enterprise", "EnterpriseStatus", "ExpectedVolume", "MemberRole", "Membership"]

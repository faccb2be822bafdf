"""Corporates models, one module per sub-domain; import every model here."""

from corporates.models.enterprise import (
    Enterprise,
    EnterpriseStatus,
    ExpectedVolume,
    MemberRole,
    Membership,
)
from corporates.models.members import Invitation

__all__ = ["Enterprise", "EnterpriseStatus", "ExpectedVolume", "Invitation", "MemberRole", "Membership"]

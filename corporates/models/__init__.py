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

# KYB domain (onboarding, sanctions, bank accounts).
from corporates.models.banking import BankAccount, BankAccountStatus  # noqa: E402
from corporates.models.kyb import (  # noqa: E402
    BeneficialOwner,
    DocumentKind,
    EnterpriseLimit,
    EnterpriseStatusChange,
    KybDocument,
    KybProfile,
)
from corporates.models.sanctions import (  # noqa: E402
    AlertStatus,
    PartyKind,
    SanctionsAlert,
    SanctionsEntry,
    SanctionsListLoad,
)

__all__ += [
    "AlertStatus",
    "BankAccount",
    "BankAccountStatus",
    "BeneficialOwner",
    "DocumentKind",
    "EnterpriseLimit",
    "EnterpriseStatusChange",
    "KybDocument",
    "KybProfile",
    "PartyKind",
    "SanctionsAlert",
    "SanctionsEntry",
    "SanctionsListLoad",
]

# ERP API access and webhooks.
from corporates.models.access import ApiKey, ApiScope, IdempotencyRecord, IdempotencyStatus  # noqa: E402
from corporates.models.webhooks import (  # noqa: E402
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

__all__ += [
    "ApiKey",
    "ApiScope",
    "DeliveryStatus",
    "IdempotencyRecord",
    "IdempotencyStatus",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]

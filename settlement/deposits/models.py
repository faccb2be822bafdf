"""Deposits: fiat wired to the custodian, minted 1:1 into the sender's wallet.

Accounting model
----------------
Each enterprise gets one virtual-account reference per currency. A wire that
arrives at the custodian with that reference, in that currency, for an
enterprise that may move money, is minted by ONE journal entry: debit the
platform's reserve (the fiat now held), credit the enterprise's wallet (the
tokens issued), for exactly the amount wired. The entry's idempotency key is
the bank's event id, so a delivery the bank repeats mints nothing twice.

Any other wire (unknown reference, wrong currency, frozen enterprise) is held
in suspense: recorded, never minted, never lost. The fiat sits at the
custodian outside the ledger's reserve until the back office assigns it to an
enterprise (which mints it then) or records that it was returned to the
sender. Reconciliation counts held suspense as a known difference between
the custodian and the ledger.

The custodian's reconciliation alerts live here too: they are about the
money at the bank, which is where deposits arrive.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from config import money
from config.ids import public_id_factory


class DepositReference(models.Model):
    """The virtual-account reference an enterprise quotes on its wires, one per currency."""

    enterprise = models.ForeignKey("corporates.Enterprise", on_delete=models.PROTECT, related_name="deposit_references")
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    reference = models.CharField(max_length=32, unique=True, help_text="Random; quoted by the sender on the wire")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["enterprise_id", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["enterprise", "currency"], name="deposit_reference_one_per_currency"),
            models.CheckConstraint(condition=Q(currency__in=money.CURRENCY_CODES), name="deposit_reference_ccy_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} ({self.currency})"


class InboundWireStatus(models.TextChoices):
    MINTED = "minted", "Minted"
    HELD = "held", "Held in suspense"
    RETURNED = "returned", "Returned to sender"


class InboundWire(models.Model):
    """One wire the custodian received, keyed by the bank's event (and wire) id."""

    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("dep"), editable=False)
    bank_event_id = models.CharField(max_length=255, unique=True)
    bank_wire_id = models.CharField(max_length=255, unique=True)
    amount = models.BigIntegerField(help_text="Minor units, as the bank reported them")
    # Not restricted to the platform's table: a wire in another currency is
    # recorded (and held) as the bank reported it.
    currency = models.CharField(max_length=8)
    reference = models.CharField(max_length=140, blank=True, default="")
    sender_name = models.CharField(max_length=140, blank=True, default="")
    enterprise = models.ForeignKey(
        "corporates.Enterprise", null=True, blank=True, on_delete=models.PROTECT, related_name="inbound_wires"
    )
    status = models.CharField(max_length=16, choices=InboundWireStatus.choices)
    entry = models.OneToOneField(
        "settlement.JournalEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="inbound_wire"
    )
    bank_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="inbound_wire_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=InboundWireStatus.values), name="inbound_wire_status_valid"),
            # Minted means exactly one mint entry and the enterprise it went to.
            models.CheckConstraint(
                condition=~Q(status=InboundWireStatus.MINTED) | Q(entry__isnull=False, enterprise__isnull=False),
                name="inbound_wire_minted_has_entry",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.amount_display} {self.currency} ref {self.reference or '—'}"

    @property
    def amount_display(self) -> str:
        if self.currency in money.CURRENCY_PLACES:
            return money.format_amount(money.from_minor(self.amount, self.currency), self.currency)
        return f"{self.amount} (minor units)"


class SuspenseReason(models.TextChoices):
    UNKNOWN_REFERENCE = "unknown_reference", "Unknown reference"
    CURRENCY_MISMATCH = "currency_mismatch", "Currency mismatch"
    ENTERPRISE_NOT_ACTIVE = "enterprise_not_active", "Enterprise frozen or not approved"


class SuspenseStatus(models.TextChoices):
    OPEN = "open", "Open"
    MINTED = "minted", "Assigned and minted"
    RETURNED = "returned", "Returned to sender"


class SuspenseItem(models.Model):
    """A wire the platform would not mint on its own: the back office decides."""

    wire = models.OneToOneField(InboundWire, on_delete=models.PROTECT, related_name="suspense")
    reason = models.CharField(max_length=32, choices=SuspenseReason.choices)
    detail = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=16, choices=SuspenseStatus.choices, default=SuspenseStatus.OPEN)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution_note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(reason__in=SuspenseReason.values), name="suspense_reason_valid"),
            models.CheckConstraint(condition=Q(status__in=SuspenseStatus.values), name="suspense_status_valid"),
            models.CheckConstraint(
                condition=Q(status=SuspenseStatus.OPEN) | Q(resolved_at__isnull=False),
                name="suspense_resolved_has_time",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="suspense_status_idx")]

    def __str__(self) -> str:
        return f"Suspense {self.wire.public_id}: {self.get_reason_display()} ({self.status})"


class ReserveAlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class ReserveAlertKind(models.TextChoices):
    RECONCILIATION = "reconciliation", "Ledger and custodian differ"
    BANK_EVENT = "bank_event", "Bank event not applied"


class ReserveAlert(models.Model):
    """Something about the money at the custodian that a person must look at."""

    kind = models.CharField(max_length=32, choices=ReserveAlertKind.choices)
    currency = models.CharField(max_length=8, blank=True, default="")
    difference = models.BigIntegerField(default=0, help_text="Custodian minus expected, minor units")
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=ReserveAlertStatus.choices, default=ReserveAlertStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ReserveAlertKind.values), name="reserve_alert_kind_valid"),
            models.CheckConstraint(
                condition=Q(status__in=ReserveAlertStatus.values), name="reserve_alert_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.currency}: {self.message[:80]}"

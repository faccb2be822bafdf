"""Bank accounts an enterprise registers to receive redemption payouts.

Registered accounts start unverified; only the back office verifies them, and
only a verified account can receive a payout (``bank_account_require_payable``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from config import money
from config.ids import public_id_factory
from corporates.models.enterprise import Enterprise


class BankAccountStatus(models.TextChoices):
    PENDING = "pending", "Pending verification"
    VERIFIED = "verified", "Verified"
    DISABLED = "disabled", "Disabled"


class BankAccount(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("ba"), editable=False)
    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="bank_accounts")
    holder_name = models.CharField(max_length=200)
    bank_name = models.CharField(max_length=200)
    account_number = models.CharField(max_length=34, help_text="Account number or IBAN, stored without spaces")
    is_iban = models.BooleanField(default=False)
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    status = models.CharField(max_length=16, choices=BankAccountStatus.choices, default=BankAccountStatus.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(currency__in=money.CURRENCY_CODES), name="bank_account_currency_valid"),
            models.CheckConstraint(condition=Q(status__in=BankAccountStatus.values), name="bank_account_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=BankAccountStatus.VERIFIED) | Q(verified_at__isnull=False),
                name="bank_account_verified_has_time",
            ),
            # One live registration per account and currency; a disabled one may be registered again.
            models.UniqueConstraint(
                fields=["enterprise", "account_number", "currency"],
                condition=~Q(status=BankAccountStatus.DISABLED),
                name="bank_account_live_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bank_name} …{self.account_number[-4:]} ({self.currency}, {self.holder_name})"

    @property
    def masked_number(self) -> str:
        return "•" * max(len(self.account_number) - 4, 0) + self.account_number[-4:]

"""Redemptions at par: tokens back into fiat on the enterprise's verified bank account, no fees.

Accounting model
----------------
A redemption moves money in at most three journal entries (two, and a third
when a paid payout comes back), each with an idempotency key derived from the
redemption, so that no retry moves it twice:

* approval: debit the enterprise's wallet, credit redemption_in_transit (the
  tokens are burnt; the fiat payout is not yet confirmed);
* the bank's ``payout.paid``: debit redemption_in_transit, credit the reserve
  (the fiat has left the custodian);
* or the bank's ``payout.failed``: debit redemption_in_transit, credit the
  wallet (the tokens come back).

A payout the bank has paid can still come back: the beneficiary's bank
returns the funds days later, and the bank reports ``payout.failed`` for a
payout it had reported paid. The fiat is then back in the reserve account, so
a third entry re-mints the tokens against it:

* the bank's ``payout.failed`` after ``payout.paid``: debit the reserve,
  credit the wallet (key ``redemption:<id>:reversed``); the redemption is
  ``returned``. The wallet is credited even if the enterprise is frozen: a
  freeze stops debits, and the tokens were the enterprise's own (see
  ``settlement.redemptions.services._return``).

The payout's amount is the redemption's amount: no fee line exists. The
redemption row records who asked, who approved, the bank's payout id and,
on failure, the bank's reason.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from config import money
from config.ids import public_id_factory


class RedemptionState(models.TextChoices):
    REQUESTED = "requested", "Requested"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PROCESSING = "processing", "Processing"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    RETURNED = "returned", "Returned by the bank"


# States that count against the daily limit: everything not given up. A returned
# redemption does not count, like a failed one: its fiat came back and its
# tokens are in the wallet again, so nothing left the platform.
LIVE_STATES = (
    RedemptionState.REQUESTED,
    RedemptionState.AWAITING_APPROVAL,
    RedemptionState.PROCESSING,
    RedemptionState.PAID,
)


class Redemption(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("red"), editable=False)
    enterprise = models.ForeignKey("corporates.Enterprise", on_delete=models.PROTECT, related_name="redemptions")
    amount = models.BigIntegerField(help_text="Minor units; exactly what the bank pays out")
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    bank_account = models.ForeignKey("corporates.BankAccount", on_delete=models.PROTECT, related_name="redemptions")
    state = models.CharField(max_length=24, choices=RedemptionState.choices, default=RedemptionState.REQUESTED)
    needs_approval = models.BooleanField(default=False, help_text="Above the enterprise's approval threshold")

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_key = models.ForeignKey(
        "corporates.ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by_key = models.ForeignKey(
        "corporates.ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    # Set by the service (not auto_now_add): a request approved at once carries
    # one time for both, never an approval before its request.
    requested_at = models.DateTimeField(default=timezone.now, editable=False)
    approved_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    returned_at = models.DateTimeField(
        null=True, blank=True, help_text="When the bank reported the paid payout failed (the funds came back)"
    )
    deadline_at = models.DateTimeField(
        null=True, blank=True, help_text="End of the next Hong Kong working day after approval"
    )

    payout_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    payout_attempts = models.PositiveIntegerField(default=0)
    # Set by the payout dispatcher that claimed the redemption (see
    # redemptions_claim_for_payout): another dispatcher skips it until then, and
    # after it a dispatcher that died mid-batch no longer holds it.
    payout_claimed_until = models.DateTimeField(null=True, blank=True)
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")

    debit_entry = models.OneToOneField(
        "settlement.JournalEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    settle_entry = models.OneToOneField(
        "settlement.JournalEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    return_entry = models.OneToOneField(
        "settlement.JournalEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Reserve → wallet: the tokens re-minted when a paid payout came back",
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="redemption_amount_positive"),
            models.CheckConstraint(condition=Q(currency__in=money.CURRENCY_CODES), name="redemption_currency_valid"),
            models.CheckConstraint(condition=Q(state__in=RedemptionState.values), name="redemption_state_valid"),
            models.CheckConstraint(
                condition=Q(requested_by__isnull=False) | Q(requested_by_key__isnull=False),
                name="redemption_has_requester",
            ),
            # Past approval the wallet has been debited: the entry must exist.
            models.CheckConstraint(
                condition=~Q(
                    state__in=[
                        RedemptionState.PROCESSING,
                        RedemptionState.PAID,
                        RedemptionState.FAILED,
                        RedemptionState.RETURNED,
                    ]
                )
                | Q(debit_entry__isnull=False, approved_at__isnull=False, deadline_at__isnull=False),
                name="redemption_processing_has_debit",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=[RedemptionState.PAID, RedemptionState.FAILED, RedemptionState.RETURNED])
                | Q(settle_entry__isnull=False),
                name="redemption_settled_has_entry",
            ),
            # Returned means it had been paid, and the entry that re-minted the tokens exists; only then.
            models.CheckConstraint(
                condition=(
                    Q(state=RedemptionState.RETURNED)
                    & Q(return_entry__isnull=False, returned_at__isnull=False, paid_at__isnull=False)
                )
                | (~Q(state=RedemptionState.RETURNED) & Q(return_entry__isnull=True, returned_at__isnull=True)),
                name="redemption_returned_has_entry",
            ),
        ]
        indexes = [
            models.Index(fields=["enterprise", "currency", "requested_at"], name="redemption_daily_idx"),
            models.Index(fields=["state", "deadline_at"], name="redemption_state_deadline_idx"),
            # The dispatcher's scan: approved, no payout yet (a handful of rows however long the history).
            models.Index(
                fields=["id"],
                name="redemption_awaiting_payout_idx",
                condition=Q(state=RedemptionState.PROCESSING, payout_id__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.amount_decimal} {self.currency} ({self.state})"

    @property
    def amount_decimal(self):
        return money.from_minor(self.amount, self.currency)

    @property
    def payout_idempotency_key(self) -> str:
        """The one key every attempt at this redemption's payout sends: the bank pays it once."""
        return f"hl-redemption-payout-{self.public_id}"


class PayoutDestination(models.Model):
    """A verified bank account as registered at the bank (Stripe's external account, ``ba_…``)."""

    bank_account = models.OneToOneField(
        "corporates.BankAccount", on_delete=models.PROTECT, related_name="payout_destination"
    )
    external_account_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.bank_account.public_id} → {self.external_account_id}"

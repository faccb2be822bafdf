"""Netting batches: what a cut-off took, how it netted, what it settled.

Accounting model
----------------
A batch nets the obligations it took per unordered pair of enterprises
{a, b} (a < b by primary key) and currency: ``net = a_owes - b_owes``. A
non-zero net settles as one journal entry, payer wallet → payee wallet,
posted by the ledger's batch path with the idempotency key
``netting:<batch>:<a>:<b>:<currency>``; a zero net settles with no entry. The
multilateral position of each participant per currency (what it is owed
minus what it owes over the whole batch) is reported beside it.

The batch is a state machine, persisted at each step:
open → netting → settling → completed. Every step is one transaction (or, in
settling, one transaction per liquidity pass) that checks the state under a
row lock first, so a step that dies rolls back whole and a step run twice
does nothing the second time.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from config import money
from config.ids import public_id_factory


class BatchStatus(models.TextChoices):
    OPEN = "open", "Open"
    NETTING = "netting", "Netting"
    SETTLING = "settling", "Settling"
    COMPLETED = "completed", "Completed"


class NettingBatch(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("nb"), editable=False)
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.OPEN)
    trigger = models.CharField(max_length=100, default="manual", help_text="The schedule, or 'manual'")
    cutoff_at = models.DateTimeField(help_text="The cut-off this batch settles")
    value_date = models.DateField(help_text="Takes pending obligations with a value date up to this day")
    created_at = models.DateTimeField()
    netting_at = models.DateTimeField(null=True, blank=True)
    settling_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    events_emitted_at = models.DateTimeField(
        null=True, blank=True, help_text="When batch.completed and the obligation events went out"
    )
    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker picked the batch up")
    passes = models.PositiveIntegerField(default=0, help_text="Liquidity passes that settled something")
    # Seconds per phase ({"claim": 0.8, "aggregate": 1.1, "settle": 3.2, ...}); figures of the report
    # (per currency: gross count and value, net transfers and value, multilateral net, efficiencies).
    phase_seconds = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=dict, blank=True)
    # Fixed when the batch nets (from settings.NETTING_MULTILATERAL_CURRENCIES), so that a batch
    # resumed after the setting changed settles each currency the way it started.
    multilateral_currencies = models.JSONField(
        default=list, blank=True, help_text="Currencies this batch settles multilaterally, through clearing"
    )
    # The cut (settlement.netting.cut): which obligations the batch took, as a
    # predicate instead of a rewrite of every row. Set once, when it nets.
    cut_id = models.BigIntegerField(
        null=True, blank=True, help_text="The highest obligation id the batch could take (fixed at its cut-off)"
    )
    cut_exclusions = models.JSONField(
        default=list,
        blank=True,
        help_text="[[cut_id, value_date], …] of the batches still running at this one's cut: their obligations",
    )

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "netting batches"
        permissions = [("run_cutoff", "Can run a netting cut-off now")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=BatchStatus.values), name="netting_batch_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.status})"


class PairStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SETTLED = "settled", "Settled"
    UNPAID = "unpaid", "Unpaid (rolled or failed)"


class NettingPair(models.Model):
    """The net of one unordered pair {party_a < party_b} in one currency, in one batch."""

    # No database foreign key (as Obligation.batch): a batch inserts up to a
    # million pair rows under its own row lock, and a per-row check of the
    # batch's key cost seconds at commit. Batches are never deleted.
    batch = models.ForeignKey(
        NettingBatch, on_delete=models.PROTECT, related_name="pairs", db_index=False, db_constraint=False
    )
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    # Enterprise ids without database foreign keys: the rows come from an
    # aggregation over obligations that already carry checked keys.
    party_a = models.ForeignKey(
        "corporates.Enterprise", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    party_b = models.ForeignKey(
        "corporates.Enterprise", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    a_owes = models.BigIntegerField(help_text="Minor units a owes b over the batch")
    b_owes = models.BigIntegerField(help_text="Minor units b owes a over the batch")
    obligation_count = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=PairStatus.choices, default=PairStatus.PENDING)
    settled_pass = models.PositiveIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(a_owes__gte=0, b_owes__gte=0), name="netting_pair_amounts_valid"),
            models.CheckConstraint(condition=Q(party_a__lt=models.F("party_b")), name="netting_pair_ordered"),
            models.CheckConstraint(condition=Q(status__in=PairStatus.values), name="netting_pair_status_valid"),
            models.UniqueConstraint(fields=["batch", "party_a", "party_b", "currency"], name="netting_pair_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.party_a_id}/{self.party_b_id} {self.currency} net {self.a_owes - self.b_owes} ({self.status})"

    @property
    def net(self) -> int:
        """Signed: positive when a pays b."""
        return self.a_owes - self.b_owes


class MultilateralStatus(models.TextChoices):
    NONE = "", "Bilateral currency"
    REMOVED = "removed", "Removed (could not settle its position)"
    DUE = "due", "Net creditor, awaiting its pay-out"
    SETTLED = "settled", "Settled through clearing"


class NettingPosition(models.Model):
    """A participant's multilateral position in one currency over one batch."""

    batch = models.ForeignKey(NettingBatch, on_delete=models.PROTECT, related_name="positions", db_index=False)
    enterprise = models.ForeignKey(
        "corporates.Enterprise", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    owes = models.BigIntegerField(help_text="Gross minor units the enterprise owes in the batch")
    owed = models.BigIntegerField(help_text="Gross minor units the enterprise is owed in the batch")
    bilateral_out = models.BigIntegerField(help_text="Sum of the bilateral nets it pays")
    bilateral_in = models.BigIntegerField(help_text="Sum of the bilateral nets it receives")
    # Multilateral currencies only: the position actually settled through clearing (signed, positive
    # when it receives), recomputed without the removed participants; null when removed.
    multilateral_status = models.CharField(
        max_length=16, choices=MultilateralStatus.choices, db_default=MultilateralStatus.NONE, blank=True
    )
    multilateral_settled = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "enterprise", "currency"], name="netting_position_unique"),
            models.CheckConstraint(
                condition=Q(multilateral_status__in=MultilateralStatus.values),
                name="netting_position_multilateral_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.enterprise_id} {self.currency} {self.owed - self.owes:+d}"

    @property
    def multilateral_net(self) -> int:
        """Signed: positive when the enterprise receives."""
        return self.owed - self.owes

    @property
    def net_paid(self) -> int:
        """What it pays net: its bilateral nets, or in a multilateral currency its pay-in to clearing."""
        if self.multilateral_status == MultilateralStatus.NONE:
            return self.bilateral_out
        return max(-(self.multilateral_settled or 0), 0)

    @property
    def net_received(self) -> int:
        """What it receives net: its bilateral nets, or in a multilateral currency its pay-out from clearing."""
        if self.multilateral_status == MultilateralStatus.NONE:
            return self.bilateral_in
        return max(self.multilateral_settled or 0, 0)

    @property
    def saved(self) -> int:
        """What netting spared the enterprise paying out: its gross obligations minus what it paid net."""
        return self.owes - self.net_paid

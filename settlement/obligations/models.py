"""Obligations: a payer owes a payee an amount in a currency by a value date.

An obligation moves no money by itself. A netting batch (settlement.netting)
takes it at a cut-off, nets it with the other obligations of the same pair of
enterprises and currency, and settles the pair's net as one journal entry;
only then is the obligation ``settled``. The amount is an integer count of
minor units, like everywhere in the ledger.

Status: pending → in_batch → settled | failed, or pending → cancelled. A pair
whose net payer cannot pay goes back to pending (``roll_count`` + 1, with the
reason) and rolls into the next batch; after too many rolls it fails.

``in_batch`` is not stored: a running batch holds its obligations by its cut
(settlement.netting.cut) and writes each of them once, when it completes.
Read them through ``settlement.netting.cut.with_running_batches``, which sets
``held_by``; ``status_shown`` and ``batch_public_id_shown`` then say in_batch
and the batch.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from config import money
from config.ids import public_id_factory


class ObligationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_BATCH = "in_batch", "In a netting batch"
    SETTLED = "settled", "Settled"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Obligation(models.Model):
    # No index beyond those in Meta (see the note there on HOT updates). Unique
    # public_id as a constraint, so PostgreSQL gets no second (LIKE) index; the
    # foreign keys are served by the composite indexes.
    # The four keys to enterprises and users have no database foreign key:
    # triggers prove them once per statement (a bulk request's COPY paid four
    # per-row checks at commit); see
    # settlement/migrations/sql/0016_obligation_set_based_references.pg.sql.
    public_id = models.CharField(max_length=32, default=public_id_factory("obl"), editable=False)
    payer = models.ForeignKey(
        "corporates.Enterprise",
        on_delete=models.PROTECT,
        related_name="obligations_out",
        db_index=False,
        db_constraint=False,
    )
    payee = models.ForeignKey(
        "corporates.Enterprise",
        on_delete=models.PROTECT,
        related_name="obligations_in",
        db_index=False,
        db_constraint=False,
    )
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    amount = models.BigIntegerField(help_text="Minor units, greater than zero")
    value_date = models.DateField(help_text="The first cut-off date at which the obligation may settle")
    external_reference = models.CharField(max_length=128, help_text="The payer's ERP invoice or payment id")
    memo = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=16, choices=ObligationStatus.choices, default=ObligationStatus.PENDING)
    needs_approval = models.BooleanField(
        default=False, help_text="Above the payer's approval threshold: counts only once a checker approves."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # The batch that holds (or last held) the obligation. No database foreign
    # key: claiming a million rows must not pay a per-row FK check.
    batch = models.ForeignKey(
        "settlement.NettingBatch",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="obligations",
        db_constraint=False,
        db_index=False,
    )
    reason = models.CharField(max_length=300, blank=True, default="", help_text="Why it rolled, failed or cancelled")
    roll_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(help_text="Time of the last status change")
    approved_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="obligation_amount_positive"),
            models.CheckConstraint(condition=Q(currency__in=money.CURRENCY_CODES), name="obligation_currency_valid"),
            models.CheckConstraint(condition=Q(status__in=ObligationStatus.values), name="obligation_status_valid"),
            models.CheckConstraint(condition=~Q(payer=F("payee")), name="obligation_payer_is_not_payee"),
            models.CheckConstraint(
                condition=~Q(status=ObligationStatus.IN_BATCH) | Q(batch__isnull=False),
                name="obligation_in_batch_has_batch",
            ),
            models.UniqueConstraint(fields=["public_id"], name="obligation_public_id_unique"),
            models.UniqueConstraint(fields=["payer", "external_reference"], name="obligation_reference_unique"),
        ]
        # No index may name status or batch: a batch rewrites every row it takes
        # twice (claim, settlement), and PostgreSQL can make those updates HOT
        # (no index writes at all) only when no indexed column changes and the
        # page has room (fillfactor 50, set in migration 0008). Measured on
        # 1M rows: 45 s + 49 s with indexes on status, 3.8 s + 5.2 s without.
        # The cut-off therefore scans the table; settled history belongs in an
        # archive (partition) once it outgrows that.
        indexes = [
            models.Index(fields=["payee", "id"], name="obligation_payee_idx"),
        ]

    # The running batch holding this obligation, when read through with_running_batches (not a column).
    held_by = None

    def __str__(self) -> str:
        return f"{self.public_id} {money.from_minor(self.amount, self.currency)} {self.currency} ({self.status_shown})"

    @property
    def status_shown(self) -> str:
        return ObligationStatus.IN_BATCH if self.held_by is not None else self.status

    def get_status_shown_display(self) -> str:
        return ObligationStatus(self.status_shown).label

    @property
    def batch_public_id_shown(self) -> str | None:
        if self.held_by is not None:
            return self.held_by.batch_public_id
        return self.batch.public_id if self.batch_id else None

    @property
    def amount_decimal(self):
        return money.from_minor(self.amount, self.currency)

"""The double-entry ledger: accounts, journal entries, postings.

Accounting model
----------------
Every amount in the ledger is an integer count of minor units (cents, fen).
A posting's ``amount`` is signed: positive is a debit, negative a credit, and
the postings of one journal entry sum to zero in each currency.

An account's ``balance`` is kept in its *normal* orientation, so that it reads
as a positive number: ``balance = normal * sum(postings)``, where ``normal`` is
+1 for the debit-normal reserve (an asset: fiat at the custodian) and -1 for
every credit-normal account (wallets, redemption in transit, FX inventory and
clearing: tokens, the issuer's liability). No balance ever goes below zero;
PostgreSQL enforces it with a CHECK constraint.

Entries and postings are immutable (PostgreSQL triggers refuse UPDATE and
DELETE); a mistake is corrected by a reversing entry pointing at the original.
Only ``settlement.ledger.services`` writes them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from config import money
from config.ids import public_id_factory


class AccountKind(models.TextChoices):
    WALLET = "wallet", "Wallet"
    RESERVE = "reserve", "Reserve"
    REDEMPTION_IN_TRANSIT = "redemption_in_transit", "Redemption in transit"
    FX_INVENTORY = "fx_inventory", "FX inventory"
    CLEARING = "clearing", "Clearing"


DEBIT_NORMAL_KINDS = frozenset({AccountKind.RESERVE})
PLATFORM_KINDS = (
    AccountKind.RESERVE,
    AccountKind.REDEMPTION_IN_TRANSIT,
    AccountKind.FX_INVENTORY,
    AccountKind.CLEARING,
)
# Token supply per currency: what the reserve must back 1:1.
SUPPLY_KINDS = (AccountKind.WALLET, AccountKind.REDEMPTION_IN_TRANSIT, AccountKind.FX_INVENTORY)


def normal_for(kind: str) -> int:
    return 1 if kind in DEBIT_NORMAL_KINDS else -1


_currency_in_table = Q(currency__in=money.CURRENCY_CODES)


class Account(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("acc"), editable=False)
    enterprise = models.ForeignKey(
        "corporates.Enterprise",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="accounts",
        help_text="Empty for the platform's own accounts.",
    )
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    kind = models.CharField(max_length=32, choices=AccountKind.choices)
    normal = models.SmallIntegerField(help_text="+1 debit-normal, -1 credit-normal")
    balance = models.BigIntegerField(default=0, help_text="Minor units, in the account's normal orientation")
    is_frozen = models.BooleanField(default=False, help_text="A frozen account takes no debit.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=_currency_in_table, name="account_currency_valid"),
            models.CheckConstraint(condition=Q(kind__in=AccountKind.values), name="account_kind_valid"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="account_balance_not_negative"),
            models.CheckConstraint(
                condition=(Q(kind=AccountKind.RESERVE, normal=1) | (~Q(kind=AccountKind.RESERVE) & Q(normal=-1))),
                name="account_normal_matches_kind",
            ),
            # Wallets belong to enterprises; every other kind to the platform.
            models.CheckConstraint(
                condition=(Q(kind=AccountKind.WALLET) & Q(enterprise__isnull=False))
                | (~Q(kind=AccountKind.WALLET) & Q(enterprise__isnull=True)),
                name="account_owner_matches_kind",
            ),
            models.UniqueConstraint(
                fields=["enterprise", "currency", "kind"],
                condition=Q(enterprise__isnull=False),
                name="account_one_per_enterprise_currency_kind",
            ),
            models.UniqueConstraint(
                fields=["currency", "kind"],
                condition=Q(enterprise__isnull=True),
                name="account_one_per_platform_currency_kind",
            ),
        ]

    def __str__(self) -> str:
        owner = self.enterprise.legal_name if self.enterprise_id else "Platform"
        return f"{owner} · {self.get_kind_display()} · {self.currency}"

    @property
    def balance_decimal(self):
        return money.from_minor(self.balance, self.currency)


class EntryKind(models.TextChoices):
    MINT = "mint", "Mint"
    TRANSFER = "transfer", "Transfer"
    REDEMPTION = "redemption", "Redemption"
    REDEMPTION_PAID = "redemption_paid", "Redemption paid"
    # payout.failed before payout.paid: in transit → wallet (the value's name predates returned payouts).
    REDEMPTION_RETURNED = "redemption_returned", "Redemption failed, tokens back"
    # payout.failed after payout.paid (the funds came back): reserve → wallet, tokens re-minted.
    REDEMPTION_REVERSED = "redemption_reversed", "Redemption returned by the bank, tokens re-minted"
    FX_SWAP = "fx_swap", "FX swap"
    NETTING = "netting", "Netting settlement"
    REVERSAL = "reversal", "Reversal"


class JournalEntry(models.Model):
    # Uniqueness as constraints, not unique=True: on PostgreSQL Django would add
    # a second (varchar_pattern_ops) index to each, which every post would pay
    # for and no query uses.
    public_id = models.CharField(max_length=32, default=public_id_factory("je"), editable=False)
    idempotency_key = models.CharField(max_length=255)
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of what the entry moves")
    kind = models.CharField(max_length=32, choices=EntryKind.choices)
    memo = models.CharField(max_length=500, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    # Foreign keys of the journal without database constraints: PostgreSQL
    # proves them once per statement instead of once per row (see
    # migrations/sql/0014_ledger_set_based_integrity.pg.sql).
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by", db_constraint=False
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "journal entries"
        constraints = [
            models.UniqueConstraint(fields=["public_id"], name="entry_public_id_unique"),
            models.UniqueConstraint(fields=["idempotency_key"], name="entry_idempotency_key_unique"),
            models.CheckConstraint(condition=Q(kind__in=EntryKind.values), name="entry_kind_valid"),
            models.CheckConstraint(
                condition=Q(kind=EntryKind.REVERSAL, reverses__isnull=False)
                | (~Q(kind=EntryKind.REVERSAL) & Q(reverses__isnull=True)),
                name="entry_reversal_points_at_original",
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="entry_created_at_idx")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.kind}"


class Posting(models.Model):
    # Both keys are checked by the posting_balanced statement trigger, not by
    # per-row foreign keys (migrations/sql/0014_ledger_set_based_integrity.pg.sql).
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings", db_constraint=False)
    # No index of its own: posting_account_id_idx (account, id) serves the
    # statements and the account guard; one index fewer on every posting.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="postings", db_index=False, db_constraint=False
    )
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    amount = models.BigIntegerField(help_text="Minor units; positive debit, negative credit")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="posting_amount_not_zero"),
            models.CheckConstraint(condition=_currency_in_table, name="posting_currency_valid"),
        ]
        indexes = [models.Index(fields=["account", "id"], name="posting_account_id_idx")]

    def __str__(self) -> str:
        side = "DR" if self.amount > 0 else "CR"
        return f"{side} {money.from_minor(abs(self.amount), self.currency)} {self.currency} → {self.account_id}"


class JournalBlock(models.Model):
    """A sealed block of the journal: entries ``first_entry_id``…``last_entry_id``, hash-chained to the previous block.

    Written only by ``settlement.ledger.sealing``; immutable on PostgreSQL like
    the entries it seals. ``hash`` covers the block's header, the previous
    block's hash and the canonical form of every entry and posting in its range.
    """

    number = models.PositiveBigIntegerField(unique=True)
    first_entry_id = models.BigIntegerField(unique=True)
    last_entry_id = models.BigIntegerField()
    entry_count = models.PositiveIntegerField()
    previous_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()

    class Meta:
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(last_entry_id__gte=models.F("first_entry_id")), name="block_range_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"block {self.number} · entries {self.first_entry_id}–{self.last_entry_id}"

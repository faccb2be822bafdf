"""FX: rate sources and rate history, pricing terms, quotes, swaps, inventory floors.

Accounting model
----------------
The platform is the counterparty of every swap, from its ``fx_inventory``
accounts (one per currency, in settlement's ledger). Accepting a quote posts
ONE journal entry of four legs: the enterprise's wallet → fx_inventory in the
sold currency, fx_inventory → the enterprise's wallet in the bought currency,
for exactly the two amounts the quote showed. The quote is stored as shown
and never changes, except its status when it is accepted.

Rates are "units of the currency per 1 USD" (the USD legs); every pair rate
is derived from them in ``fx.pricing``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from moneyed import Money

from config import money
from config.ids import public_id_factory

RATE_DIGITS = 20
RATE_PLACES = 10
AMOUNT_DIGITS = 20

_NON_USD = [code for code in money.CURRENCY_CODES if code != "USD"]
_NON_USD_CHOICES = [(code, name) for code, name in money.CURRENCY_CHOICES if code != "USD"]


# --- rates ---------------------------------------------------------------------


class RateSource(models.Model):
    """A source of USD legs. ``key`` names the class in ``fx.rates`` that implements it.

    When several active sources offer a leg, the highest ``priority`` wins
    (the manual source outranks the simulated feed, so it overrides it).
    """

    key = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    priority = models.IntegerField(default=0, help_text="Higher wins when several active sources offer a rate.")
    is_active = models.BooleanField(default=True)
    state = models.JSONField(default=dict, blank=True, help_text="The source's own memory (e.g. the feed's walk).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "key"]

    def __str__(self) -> str:
        return self.name


class RateTick(models.Model):
    """One published USD leg: the rate history. What quotes price from is the latest tick."""

    source = models.ForeignKey(RateSource, on_delete=models.PROTECT, related_name="ticks")
    currency = models.CharField(max_length=3, choices=_NON_USD_CHOICES, help_text="Units of it per 1 USD")
    mid = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_PLACES)
    published_at = models.DateTimeField()

    class Meta:
        ordering = ["-published_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(currency__in=_NON_USD), name="fx_tick_currency_valid"),
            models.CheckConstraint(condition=Q(mid__gt=0), name="fx_tick_mid_positive"),
        ]
        indexes = [models.Index(fields=["currency", "-published_at", "-id"], name="fx_tick_latest_idx")]

    def __str__(self) -> str:
        return f"USD/{self.currency} {self.mid} ({self.source.key}, {self.published_at:%Y-%m-%d %H:%M:%S})"


class ManualRate(models.Model):
    """A USD leg set by the back office. While active it overrides the feed for its currency."""

    currency = models.CharField(max_length=3, choices=_NON_USD_CHOICES)
    mid = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_PLACES, help_text="Units per 1 USD")
    is_active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True, default="")
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["currency", "-updated_at"]
        constraints = [
            models.CheckConstraint(condition=Q(currency__in=_NON_USD), name="fx_manual_currency_valid"),
            models.CheckConstraint(condition=Q(mid__gt=0), name="fx_manual_mid_positive"),
            models.UniqueConstraint(fields=["currency"], condition=Q(is_active=True), name="fx_manual_one_active"),
        ]

    def __str__(self) -> str:
        return f"USD/{self.currency} {self.mid}{'' if self.is_active else ' (inactive)'}"


# --- pricing and limits ------------------------------------------------------------


class PricingTier(models.Model):
    name = models.CharField(max_length=64, unique=True)
    spread_bps = models.PositiveIntegerField(help_text="Taken off the mid, in basis points (1 bp = 0.01%).")

    class Meta:
        ordering = ["spread_bps", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(spread_bps__lte=1000), name="fx_tier_spread_at_most_10pct"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.spread_bps} bps)"


class EnterpriseFxTerms(models.Model):
    """An enterprise's pricing tier and single-swap limit; without a row, the settings' defaults apply."""

    enterprise = models.OneToOneField("corporates.Enterprise", on_delete=models.CASCADE, related_name="fx_terms")
    tier = models.ForeignKey(PricingTier, on_delete=models.PROTECT, related_name="terms")
    single_swap_limit_usd = models.DecimalField(
        max_digits=AMOUNT_DIGITS,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Largest single swap, valued in USD at the mid. Empty: FX_DEFAULT_SINGLE_SWAP_LIMIT_USD.",
    )

    class Meta:
        verbose_name = "enterprise FX terms"
        verbose_name_plural = "enterprise FX terms"
        constraints = [
            models.CheckConstraint(
                condition=Q(single_swap_limit_usd__isnull=True) | Q(single_swap_limit_usd__gt=0),
                name="fx_terms_limit_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.enterprise.legal_name}: {self.tier}"


class InventoryFloor(models.Model):
    """The platform's FX inventory must not fall below ``floor`` in ``currency`` through swaps."""

    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES, unique=True)
    floor = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=2)

    class Meta:
        ordering = ["currency"]
        constraints = [
            models.CheckConstraint(condition=Q(currency__in=money.CURRENCY_CODES), name="fx_floor_currency_valid"),
            models.CheckConstraint(condition=Q(floor__gte=0), name="fx_floor_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.currency} floor {self.floor}"


class InventoryAlertKind(models.TextChoices):
    QUOTE_REFUSED = "quote_refused", "A swap was refused: it would breach the floor"
    BELOW_FLOOR = "below_floor", "Inventory is below the floor"


class InventoryAlert(models.Model):
    """For the back office: the inventory in ``currency`` is at or near its floor. Open until acknowledged."""

    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    kind = models.CharField(max_length=16, choices=InventoryAlertKind.choices)
    balance = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=2, help_text="Inventory when raised")
    floor = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=2)
    detail = models.CharField(max_length=300, blank=True, default="")
    occurrences = models.PositiveIntegerField(default=1)
    raised_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            models.CheckConstraint(condition=Q(currency__in=money.CURRENCY_CODES), name="fx_alert_currency_valid"),
            models.CheckConstraint(condition=Q(kind__in=InventoryAlertKind.values), name="fx_alert_kind_valid"),
            # One open alert per currency and kind: repeats count up instead of flooding the back office.
            models.UniqueConstraint(
                fields=["currency", "kind"], condition=Q(acknowledged_at__isnull=True), name="fx_alert_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.currency} {self.get_kind_display()}"


# --- quotes and swaps ----------------------------------------------------------------


class QuoteStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"


class FixedSideChoice(models.TextChoices):
    SELL = "sell", "Sell amount fixed"
    BUY = "buy", "Buy amount fixed"


class Quote(models.Model):
    """A firm quote, stored exactly as shown. Honoured until ``expires_at`` (exclusive)."""

    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("fxq"), editable=False)
    enterprise = models.ForeignKey("corporates.Enterprise", on_delete=models.PROTECT, related_name="fx_quotes")
    sell_currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    buy_currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    fixed_side = models.CharField(max_length=4, choices=FixedSideChoice.choices)
    mid_rate = models.DecimalField(
        max_digits=RATE_DIGITS, decimal_places=RATE_PLACES, help_text="Units of buy per 1 sell, at the mid"
    )
    client_rate = models.DecimalField(
        max_digits=RATE_DIGITS, decimal_places=RATE_PLACES, help_text="Units of buy per 1 sell, for the client"
    )
    spread_bps = models.PositiveIntegerField()
    sell_amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=2, help_text="Exactly what is paid")
    buy_amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=2, help_text="Exactly what is received")
    fee_amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=2, default=0)
    usd_value = models.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=2, help_text="The sell amount in USD at the mid, rounded up (limits)"
    )
    rates_published_at = models.DateTimeField(help_text="When the oldest USD leg used was published")
    rate_sources = models.CharField(max_length=100, help_text="Sources of the USD legs used")
    status = models.CharField(max_length=10, choices=QuoteStatus.choices, default=QuoteStatus.OPEN)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(sell_currency__in=money.CURRENCY_CODES), name="fx_quote_sell_ccy"),
            models.CheckConstraint(condition=Q(buy_currency__in=money.CURRENCY_CODES), name="fx_quote_buy_ccy"),
            models.CheckConstraint(condition=~Q(sell_currency=F("buy_currency")), name="fx_quote_two_currencies"),
            models.CheckConstraint(condition=Q(sell_amount__gt=0, buy_amount__gt=0), name="fx_quote_amounts_pos"),
            models.CheckConstraint(condition=Q(fee_amount=0), name="fx_quote_no_fee"),
            models.CheckConstraint(condition=Q(client_rate__gt=0, client_rate__lte=F("mid_rate")), name="fx_rate_ok"),
            models.CheckConstraint(condition=Q(expires_at__gt=F("created_at")), name="fx_quote_expiry_after"),
            models.CheckConstraint(condition=Q(status__in=QuoteStatus.values), name="fx_quote_status_valid"),
            models.CheckConstraint(condition=Q(fixed_side__in=FixedSideChoice.values), name="fx_quote_side_valid"),
        ]
        indexes = [models.Index(fields=["enterprise", "-created_at"], name="fx_quote_ent_created_idx")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.sell_amount} {self.sell_currency} → {self.buy_amount} {self.buy_currency}"

    def is_expired(self, now) -> bool:
        return now >= self.expires_at

    def status_at(self, now) -> str:
        """open, accepted, or expired: an open quote past its expiry (the stored status stays open)."""
        if self.status == QuoteStatus.OPEN and self.is_expired(now):
            return "expired"
        return self.status

    @property
    def sell_money(self) -> Money:
        return Money(self.sell_amount, self.sell_currency)

    @property
    def buy_money(self) -> Money:
        return Money(self.buy_amount, self.buy_currency)

    @property
    def fee_money(self) -> Money:
        return Money(self.fee_amount, self.sell_currency)


class Swap(models.Model):
    """An accepted quote: the four-leg journal entry it posted. Amounts copied from the quote for history."""

    public_id = models.CharField(max_length=32, unique=True, default=public_id_factory("fxs"), editable=False)
    quote = models.OneToOneField(Quote, on_delete=models.PROTECT, related_name="swap")
    enterprise = models.ForeignKey("corporates.Enterprise", on_delete=models.PROTECT, related_name="fx_swaps")
    sell_currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    sell_amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=2)
    buy_currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    buy_amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=2)
    client_rate = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_PLACES)
    journal_entry = models.OneToOneField("settlement.JournalEntry", on_delete=models.PROTECT, related_name="fx_swap")
    accepted_at = models.DateTimeField()

    class Meta:
        ordering = ["-accepted_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(sell_amount__gt=0, buy_amount__gt=0), name="fx_swap_amounts_pos"),
        ]
        indexes = [models.Index(fields=["enterprise", "-accepted_at"], name="fx_swap_ent_accepted_idx")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.sell_amount} {self.sell_currency} → {self.buy_amount} {self.buy_currency}"

    @property
    def sell_money(self) -> Money:
        return Money(self.sell_amount, self.sell_currency)

    @property
    def buy_money(self) -> Money:
        return Money(self.buy_amount, self.buy_currency)

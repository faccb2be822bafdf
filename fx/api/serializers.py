"""Shapes of the FX API. Input is parsed here (money through config.money); rules live in fx.services."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config import money
from config.api.fields import MoneyField
from fx.models import FixedSideChoice

CURRENCY_CHOICES = list(money.CURRENCY_CODES)


class QuoteCreateSerializer(serializers.Serializer):
    """Sell one currency for another. Name both currencies, and fix exactly one amount as money.

    ``{"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": "1000.00", "currency": "USD"}}``
    asks what 1,000.00 USD buys; ``buy_amount`` instead asks what a given amount costs.
    """

    sell_currency = serializers.ChoiceField(choices=CURRENCY_CHOICES, help_text="What you pay in.")
    buy_currency = serializers.ChoiceField(choices=CURRENCY_CHOICES, help_text="What you receive.")
    sell_amount = MoneyField(required=False, help_text="Fix what you pay (in sell_currency); the buy side follows.")
    buy_amount = MoneyField(required=False, help_text="Fix what you receive (in buy_currency); the sell side follows.")

    def validate(self, attrs):
        if ("sell_amount" in attrs) == ("buy_amount" in attrs):
            error = serializers.ErrorDetail("Give exactly one of sell_amount or buy_amount.", "quote_amount_invalid")
            raise serializers.ValidationError({"sell_amount": [error]})
        side = "sell" if "sell_amount" in attrs else "buy"
        fixed = attrs.pop(f"{side}_amount")
        if fixed.currency.code != attrs[f"{side}_currency"]:
            error = serializers.ErrorDetail(f"{side}_amount must be in {side}_currency.", "currency_mismatch")
            raise serializers.ValidationError({f"{side}_amount": [error]})
        attrs[f"{side}_amount"] = fixed.amount  # an exact Decimal, parsed by config.money
        return attrs


# Plain serializers (not ModelSerializer): every quote response builds one, and
# introspecting the model each time costs more than the rest of the shaping.
class QuoteSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    status = serializers.SerializerMethodField(help_text="open, accepted, or expired (open past expires_at).")
    fixed_side = serializers.ChoiceField(choices=FixedSideChoice.choices, help_text="Which amount you fixed.")
    sell = MoneyField(source="sell_money", help_text="Exactly what you pay (rounded up).")
    buy = MoneyField(source="buy_money", help_text="Exactly what you receive (rounded down).")
    fee = MoneyField(source="fee_money", allow_zero=True, help_text="Always zero.")
    mid_rate = serializers.DecimalField(max_digits=20, decimal_places=10, help_text="Units of buy per 1 sell, mid.")
    client_rate = serializers.DecimalField(
        max_digits=20, decimal_places=10, help_text="Units of buy per 1 sell, yours (mid less the spread)."
    )
    spread_bps = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(help_text="Accept before this instant (exclusive).")
    rates_published_at = serializers.DateTimeField(help_text="When the oldest USD leg used was published.")

    @extend_schema_field(serializers.ChoiceField(choices=["open", "accepted", "expired"]))
    def get_status(self, quote) -> str:
        return quote.status_at(timezone.now())


class SwapSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    # Annotated by the swap history's queryset, set by fx.services.quote_accept.
    quote = serializers.CharField(source="quote_public_id")
    sell = MoneyField(source="sell_money")
    buy = MoneyField(source="buy_money")
    client_rate = serializers.DecimalField(max_digits=20, decimal_places=10)
    journal_entry = serializers.CharField(source="journal_entry_public_id", help_text="The ledger entry (je_…).")
    accepted_at = serializers.DateTimeField()


class RateLegSerializer(serializers.Serializer):
    currency = serializers.CharField(help_text="Units of it per 1 USD.")
    mid = serializers.DecimalField(max_digits=20, decimal_places=10)
    source = serializers.CharField()


class PairRateSerializer(serializers.Serializer):
    sell_currency = serializers.CharField()
    buy_currency = serializers.CharField()
    mid_rate = serializers.DecimalField(max_digits=20, decimal_places=10)
    client_rate = serializers.DecimalField(max_digits=20, decimal_places=10, help_text="Indicative; a quote is firm.")


class RatesSerializer(serializers.Serializer):
    published_at = serializers.DateTimeField(allow_null=True, help_text="When the oldest leg was published.")
    stale = serializers.BooleanField(help_text="True: quoting is refused (rates_stale) until new rates arrive.")
    spread_bps = serializers.IntegerField(help_text="Your pricing tier's spread.")
    legs = RateLegSerializer(many=True)
    pairs = PairRateSerializer(many=True)

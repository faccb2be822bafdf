"""Serializers of the corporates API: shapes only, no business rules (those are in the services)."""

from __future__ import annotations

from rest_framework import serializers

from config import money
from config.api.fields import MoneyField
from corporates.models import BankAccount, WebhookDelivery, WebhookEndpoint, WebhookEvent


class EnterpriseSummarySerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    name = serializers.CharField(source="legal_name")
    status = serializers.CharField()


class LimitsSerializer(serializers.Serializer):
    currency = serializers.CharField()
    single_payment = MoneyField()
    daily_redemption = MoneyField()
    approval_threshold = MoneyField()


class ApiKeySummarySerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    name = serializers.CharField()
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())


class MeSerializer(serializers.Serializer):
    enterprise = EnterpriseSummarySerializer()
    limits = LimitsSerializer(many=True, allow_null=True, help_text="Per currency; null until limits are known.")
    api_key = ApiKeySummarySerializer()


class WebhookEndpointSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "created_at"]
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="Signing secret; verify Harbourline-Signature with it.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointRolledSerializer(WebhookEndpointCreatedSerializer):
    secret = serializers.CharField(read_only=True, help_text="The new signing secret: shown this once.")
    previous_secret_expires_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Until then the previous secret signs too (a second v1)."
    )

    class Meta(WebhookEndpointCreatedSerializer.Meta):
        fields = [*WebhookEndpointCreatedSerializer.Meta.fields, "previous_secret_expires_at"]
        read_only_fields = fields


class WebhookSecretRollSerializer(serializers.Serializer):
    overlap_hours = serializers.IntegerField(
        required=False, default=24, help_text="0–168: how long the previous secret keeps signing beside the new one."
    )


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=100), min_length=1, max_length=50,
        help_text='Exact types ("fx.quote.accepted"), prefixes ("fx.*") or "*".',
    )  # fmt: skip
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    endpoint = serializers.CharField(source="endpoint.public_id", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "endpoint", "status", "attempt_count", "last_status_code", "next_attempt_at", "delivered_at",
            "is_resend", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookEventSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    created = serializers.DateTimeField(source="created_at", read_only=True)
    data = serializers.JSONField(read_only=True)
    deliveries = WebhookDeliverySerializer(many=True, read_only=True)

    class Meta:
        model = WebhookEvent
        fields = ["id", "type", "created", "data", "deliveries"]
        read_only_fields = fields


class WebhookEventResendSerializer(serializers.Serializer):
    endpoint = serializers.CharField(
        required=False, max_length=32, help_text="Only this endpoint (we_…); by default every subscribed endpoint."
    )


class WebhookResendResultSerializer(serializers.Serializer):
    deliveries = WebhookDeliverySerializer(many=True)


class BankAccountSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    account_number = serializers.CharField(
        source="masked_number", read_only=True, help_text="Masked: only the last four characters are shown."
    )

    class Meta:
        model = BankAccount
        fields = [
            "id", "holder_name", "bank_name", "account_number", "is_iban", "currency", "status", "created_at",
            "verified_at",
        ]  # fmt: skip
        read_only_fields = fields


class BankAccountCreateSerializer(serializers.Serializer):
    holder_name = serializers.CharField(max_length=200)
    bank_name = serializers.CharField(max_length=200)
    account_number = serializers.CharField(max_length=64, help_text="Account number or IBAN; spaces allowed.")
    currency = serializers.ChoiceField(choices=list(money.CURRENCY_CODES))

"""Serializer fields for money: ``{"amount": "1250.00", "currency": "HKD"}`` in and out.

Input goes through ``config.money.parse_money`` — decimal strings only, no
floats, no exponents, no more places than the currency has, a known currency
— and each refusal keeps its stable code (``amount_too_precise``, …) in the
problem's ``errors``. Output goes through ``money_to_json``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from moneyed import Money
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from config import money


class MoneySchema(serializers.Serializer):
    """Only describes the wire form for the OpenAPI schema (component ``Money``)."""

    amount = serializers.RegexField(
        r"^\d+(\.\d+)?$", help_text='A decimal string with the currency\'s places, e.g. "1250.00". Never a number.'
    )
    currency = serializers.ChoiceField(choices=list(money.CURRENCY_CODES))

    class Meta:
        ref_name = "Money"


@extend_schema_field(MoneySchema)
class MoneyField(serializers.Field):
    default_error_messages = {"invalid": 'Money must be an object {"amount": "…", "currency": "…"}.'}

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Money:
        try:
            return money.parse_money(data, field=self.field_name or "amount", allow_zero=self.allow_zero)
        except money.MoneyParseError as exc:
            # "amount.currency" -> {"currency": [...]} under this field, so the
            # problem's errors name the exact sub-field.
            _, _, sub = exc.field.partition(".")
            error = [ErrorDetail(exc.message, code=exc.code)]
            raise serializers.ValidationError({sub: error} if sub else error) from exc

    def to_representation(self, value: Money | money.Amount) -> dict[str, str]:
        if isinstance(value, money.Amount):
            return value.to_json()
        return money.money_to_json(value)

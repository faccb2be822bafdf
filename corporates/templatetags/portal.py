"""Template filters of the portal: exact money display (never through float)."""

from __future__ import annotations

from decimal import Decimal

from django import template

from config import money

register = template.Library()


def format_minor(minor: int, currency: str) -> str:
    """``250000000, "HKD"`` -> ``"2,500,000.00"``: grouped, exactly the currency's places."""
    return f"{money.from_minor(minor, currency):,}"


@register.filter
def minor_amount(minor: int, currency: str) -> str:
    return format_minor(int(minor), currency)


@register.filter
def decimal_amount(amount: Decimal, currency: str) -> str:
    return f"{Decimal(amount).quantize(money.quantum(currency)):,}"


@register.filter
def currency_name(currency: str) -> str:
    return money.CURRENCY_NAMES.get(currency, currency)

"""Per-enterprise limits, per currency: single payment, daily redemption, approval threshold.

Limits are set per currency, never converted: corporates does not depend on
FX rates, and a limit that moved with the rate would surprise its owner.
settings.KYB_DEFAULT_LIMITS holds the defaults for each currency; an
``EnterpriseLimit`` row overrides any of the three for one enterprise and
currency (an empty field keeps the default). Other apps read the effective
figures through ``limits_for`` and check them with the ``limits_check_*``
helpers; they never read the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from config import money
from config.db import run_in_transaction
from config.errors import DomainError
from corporates.models import Enterprise, EnterpriseLimit
from corporates.permissions import back_office_require

LIMIT_FIELDS = ("single_payment", "daily_redemption", "approval_threshold")


class InvalidLimit(DomainError):
    code = "invalid_limit"
    title = "The limit is not a valid amount."
    http_status = 400


class SinglePaymentLimitExceeded(DomainError):
    code = "single_payment_limit_exceeded"
    title = "The amount is above the enterprise's single-payment limit."
    http_status = 422


class DailyRedemptionLimitExceeded(DomainError):
    code = "daily_redemption_limit_exceeded"
    title = "The redemption would take the enterprise above its daily redemption limit."
    http_status = 422


@dataclass(frozen=True)
class Limits:
    currency: str
    single_payment: Decimal
    daily_redemption: Decimal
    approval_threshold: Decimal

    def needs_second_approval(self, amount: Decimal) -> bool:
        """Maker-checker: strictly above the threshold, a second person must approve."""
        return amount > self.approval_threshold

    def to_json(self) -> dict[str, str]:
        return {
            "currency": self.currency,
            **{field: money.format_amount(getattr(self, field), self.currency) for field in LIMIT_FIELDS},
        }


def _default(currency: str, field: str) -> Decimal:
    return money.parse_amount(settings.KYB_DEFAULT_LIMITS[currency][field], currency, allow_zero=True)


def limits_for(*, enterprise: Enterprise, currency: str) -> Limits:
    """The effective limits of one enterprise in one currency (override, else default)."""
    currency = money.parse_currency(currency)
    override = EnterpriseLimit.objects.filter(enterprise=enterprise, currency=currency).first()
    return limits_resolve(currency=currency, override=override)


def limits_resolve(*, currency: str, override: EnterpriseLimit | None) -> Limits:
    """The effective limits from the enterprise's override row in ``currency`` (None: defaults only),
    for a caller that has read that row already (with the rest of what it checks)."""
    values = {}
    for field in LIMIT_FIELDS:
        chosen = getattr(override, field) if override is not None else None
        values[field] = chosen if chosen is not None else _default(currency, field)
    return Limits(currency=currency, **values)


def limits_all_for(*, enterprise: Enterprise) -> dict[str, Limits]:
    return {code: limits_for(enterprise=enterprise, currency=code) for code in money.CURRENCY_CODES}


def limits_check_single_payment(*, enterprise: Enterprise, amount: Decimal, currency: str) -> None:
    limit = limits_for(enterprise=enterprise, currency=currency).single_payment
    if amount > limit:
        raise SinglePaymentLimitExceeded(
            f"{amount} {currency} is above the single-payment limit of {limit} {currency}.", limit=str(limit)
        )


def limits_check_daily_redemption(
    *, enterprise: Enterprise, amount: Decimal, already_today: Decimal, currency: str, limits: Limits | None = None
) -> None:
    """``already_today``: what the caller (settlement) counts as redeemed today, in this currency;
    ``limits``: the enterprise's limits in it, when the caller has them already."""
    limit = (limits or limits_for(enterprise=enterprise, currency=currency)).daily_redemption
    if already_today + amount > limit:
        raise DailyRedemptionLimitExceeded(
            f"{already_today} + {amount} {currency} is above the daily limit of {limit} {currency}.", limit=str(limit)
        )


def _parse_limit(value: Decimal | str | None, currency: str, field: str, *, allow_zero: bool) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return money.parse_amount(str(value), currency, allow_zero=allow_zero, field=field)
    except money.MoneyParseError as exc:
        raise InvalidLimit(exc.message, field=field)


def enterprise_limits_set(
    *,
    enterprise: Enterprise,
    currency: str,
    single_payment: Decimal | str | None,
    daily_redemption: Decimal | str | None,
    approval_threshold: Decimal | str | None,
    actor: AbstractBaseUser | None = None,
) -> EnterpriseLimit:
    """Override (or, with None, return to the default) an enterprise's limits in one currency.

    Limits are the back office's: a user ``actor`` must be staff (``RoleNotPermitted``).
    """
    if actor is not None:
        back_office_require(actor=actor)
    try:
        currency = money.parse_currency(currency)
    except money.MoneyParseError as exc:
        raise InvalidLimit(exc.message, field="currency")
    values = {
        "single_payment": _parse_limit(single_payment, currency, "single_payment", allow_zero=False),
        "daily_redemption": _parse_limit(daily_redemption, currency, "daily_redemption", allow_zero=False),
        # Zero is meaningful: every payment needs a checker.
        "approval_threshold": _parse_limit(approval_threshold, currency, "approval_threshold", allow_zero=True),
    }

    def set_limits() -> EnterpriseLimit:
        row, _ = EnterpriseLimit.objects.select_for_update().update_or_create(
            enterprise=enterprise, currency=currency, defaults=values
        )
        return row

    return run_in_transaction(set_limits)

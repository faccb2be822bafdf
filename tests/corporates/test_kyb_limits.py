"""Per-enterprise limits: defaults per currency from settings, overrides per enterprise."""

from decimal import Decimal

import pytest

from corporates.onboarding.limits import (
    DailyRedemptionLimitExceeded,
    InvalidLimit,
    SinglePaymentLimitExceeded,
    enterprise_limits_set,
    limits_all_for,
    limits_check_daily_redemption,
    limits_check_single_payment,
    limits_for,
)
from tests.factories import EnterpriseFactory

pytestmark = pytest.mark.django_db


def test_defaults_come_from_settings_per_currency(settings):
    settings.KYB_DEFAULT_LIMITS = {
        **settings.KYB_DEFAULT_LIMITS,
        "USD": {"single_payment": "1000.00", "daily_redemption": "5000.00", "approval_threshold": "100.00"},
    }
    limits = limits_for(enterprise=EnterpriseFactory(), currency="USD")
    assert (limits.single_payment, limits.daily_redemption, limits.approval_threshold) == (
        Decimal("1000.00"),
        Decimal("5000.00"),
        Decimal("100.00"),
    )
    assert limits.to_json() == {
        "currency": "USD",
        "single_payment": "1000.00",
        "daily_redemption": "5000.00",
        "approval_threshold": "100.00",
    }


def test_an_override_replaces_only_the_fields_it_sets(settings):
    enterprise, other = EnterpriseFactory(), EnterpriseFactory()
    enterprise_limits_set(
        enterprise=enterprise, currency="HKD", single_payment="250000.00", daily_redemption=None, approval_threshold="0"
    )
    limits = limits_for(enterprise=enterprise, currency="HKD")
    default_daily = Decimal(settings.KYB_DEFAULT_LIMITS["HKD"]["daily_redemption"])
    assert (limits.single_payment, limits.daily_redemption, limits.approval_threshold) == (
        Decimal("250000.00"),
        default_daily,
        Decimal("0"),
    )
    assert limits.needs_second_approval(Decimal("0.01"))  # threshold 0: every payment needs a checker
    assert limits_for(enterprise=other, currency="HKD").single_payment != Decimal("250000.00")
    assert set(limits_all_for(enterprise=enterprise)) == {"HKD", "USD", "CNH"}


def test_maker_checker_threshold_is_strictly_above():
    enterprise = EnterpriseFactory()
    enterprise_limits_set(
        enterprise=enterprise, currency="CNH", single_payment=None, daily_redemption=None, approval_threshold="5000.00"
    )
    limits = limits_for(enterprise=enterprise, currency="CNH")
    assert not limits.needs_second_approval(Decimal("5000.00"))
    assert limits.needs_second_approval(Decimal("5000.01"))


def test_limit_checks():
    enterprise = EnterpriseFactory()
    enterprise_limits_set(
        enterprise=enterprise, currency="HKD", single_payment="100.00", daily_redemption="300.00",
        approval_threshold=None,
    )  # fmt: skip
    limits_check_single_payment(enterprise=enterprise, amount=Decimal("100.00"), currency="HKD")
    with pytest.raises(SinglePaymentLimitExceeded) as caught:
        limits_check_single_payment(enterprise=enterprise, amount=Decimal("100.01"), currency="HKD")
    assert caught.value.code == "single_payment_limit_exceeded"
    limits_check_daily_redemption(
        enterprise=enterprise, amount=Decimal("100.00"), already_today=Decimal("200.00"), currency="HKD"
    )
    with pytest.raises(DailyRedemptionLimitExceeded):
        limits_check_daily_redemption(
            enterprise=enterprise, amount=Decimal("0.01"), already_today=Decimal("300.00"), currency="HKD"
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [("single_payment", "0"), ("single_payment", "-1"), ("daily_redemption", "1.001"), ("approval_threshold", "1e3")],
)
def test_invalid_limits_are_refused(field, value):
    values = {"single_payment": None, "daily_redemption": None, "approval_threshold": None, field: value}
    with pytest.raises(InvalidLimit) as caught:
        enterprise_limits_set(enterprise=EnterpriseFactory(), currency="HKD", **values)
    assert caught.value.context["field"] == field


def test_unknown_currency_is_refused():
    with pytest.raises(InvalidLimit):
        enterprise_limits_set(
            enterprise=EnterpriseFactory(), currency="EUR", single_payment="1", daily_redemption=None,
            approval_threshold=None,
        )  # fmt: skip

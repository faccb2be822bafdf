"""config/money.py: parsing money from outside, minor-unit conversions, and CNH round trips.

Every refusal has its own stable code; clients act on the code, so each one is
pinned here with the inputs that must produce it.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django import forms
from djmoney.forms.fields import MoneyField as MoneyFormField
from hypothesis import given
from hypothesis import strategies as st
from moneyed import Money

from config import money
from config.money import MoneyParseError, from_minor, money_to_json, parse_amount, parse_money, to_minor
from corporates.models import ExpectedVolume
from tests.factories import EnterpriseFactory


def refusal_code(value, currency="HKD", **kwargs) -> str:
    with pytest.raises(MoneyParseError) as caught:
        parse_amount(value, currency, **kwargs)
    return caught.value.code


# --- parse_amount: what is accepted ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("1250.00", "HKD", Decimal("1250.00")),
        ("1250", "USD", Decimal("1250.00")),
        ("0.01", "CNH", Decimal("0.01")),
        ("12.5", "HKD", Decimal("12.50")),
        ("+7.25", "USD", Decimal("7.25")),
        ("007.10", "HKD", Decimal("7.10")),
        (".5", "HKD", Decimal("0.50")),
        ("5.", "HKD", Decimal("5.00")),
        ("999999999999999.99", "CNH", Decimal("999999999999999.99")),  # the largest amount held
        ("0000000000000000001.00", "HKD", Decimal("1.00")),  # leading zeros are not size
    ],
)
def test_plain_decimal_strings_are_accepted_and_quantized(text, currency, expected):
    amount = parse_amount(text, currency)

    assert amount == expected
    # Quantized to the currency's places, so str() is the wire form.
    assert amount.as_tuple().exponent == -2
    assert str(amount) == str(expected)


def test_zero_is_accepted_only_when_allowed():
    assert parse_amount("0.00", "HKD", allow_zero=True) == Decimal("0.00")
    assert refusal_code("0.00") == "amount_not_positive"


# --- parse_amount: each refusal with its own code ---------------------------------------


@pytest.mark.parametrize("value", [12.5, 0.1, 1e3, float("nan"), 100, 0, -5, True, None, Decimal("1.00"), b"1.00"])
def test_non_strings_are_refused_floats_and_ints_included(value):
    assert refusal_code(value) == "amount_not_string"


@pytest.mark.parametrize("text", ["1e3", "1E3", "1.5e2", "-1e3", "+2E-2", "1e+3", "0e0"])
def test_exponent_notation_is_refused(text):
    assert refusal_code(text) == "amount_exponent"


@pytest.mark.parametrize("text", ["NaN", "nan", "sNaN", "-NaN", "Infinity", "-Infinity", "+inf", "-inf", "inf", "INF"])
def test_nan_and_infinity_are_refused(text):
    assert refusal_code(text) == "amount_not_finite"


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        " 1.00",
        "1.00 ",
        "1.00\n",
        "\u00a01.00",
        "1 000.00",
        "1,000.00",
        "1.000,00",
        "1_000",
        "HKD 1.00",
        "1.00HKD",
        "$1.00",
        "abc",
        "1.2.3",
        "--1",
        "+-1",
        "1-",
        ".",
        "-",
        "1e",
        "0x10",
        "½",
        # Decimal() reads non-ASCII digits; a money parser must not.
        "١٢.٥٠",  # Arabic-Indic digits
        "１２.００",  # full-width digits
        "१२",  # Devanagari digits
    ],
)
def test_garbage_spaces_and_separators_are_refused(text):
    assert refusal_code(text) == "amount_malformed"


@pytest.mark.parametrize(("text", "currency"), [("1.001", "HKD"), ("1.000", "HKD"), ("0.005", "USD"), ("7.123", "CNH")])
def test_more_decimals_than_the_currency_has_are_refused_even_trailing_zeros(text, currency):
    assert refusal_code(text, currency) == "amount_too_precise"


@pytest.mark.parametrize("text", ["0", "0.00", "-0", "-0.00", ".0", "-1", "-0.01", "-1250.00"])
def test_zero_and_negative_amounts_are_refused(text):
    assert refusal_code(text) == "amount_not_positive"


@pytest.mark.parametrize("text", ["-0.00", "-0", "-5.00"])
def test_a_minus_sign_is_refused_even_where_zero_is_allowed(text):
    # Otherwise "-0.00" comes back as Decimal("-0.00") and is written out as "-0.00".
    assert refusal_code(text, allow_zero=True) == "amount_not_positive"


@pytest.mark.parametrize("text", ["1000000000000000", "1000000000000000.00", "99999999999999999999", "1" + "0" * 40])
def test_amounts_too_large_to_hold_are_refused(text):
    assert refusal_code(text) == "amount_too_large"


def test_the_largest_accepted_amount_fits_a_signed_64_bit_minor_unit_count():
    assert to_minor(parse_amount("999999999999999.99", "HKD"), "HKD") < 2**63


@pytest.mark.parametrize("currency", ["hkd", "Hkd", "CNY", "RMB", "EUR", "", " HKD", "HKD ", None, 344, "XXX"])
def test_unknown_currencies_are_refused(currency):
    assert refusal_code("1.00", currency) == "unknown_currency"


def test_refusals_carry_field_and_message():
    with pytest.raises(MoneyParseError) as caught:
        parse_amount(1.5, "HKD", field="payment.amount")

    assert caught.value.field == "payment.amount"
    assert "decimal string" in caught.value.message
    assert isinstance(caught.value, ValueError)


# --- parse_money --------------------------------------------------------------------------


def test_parse_money_reads_the_wire_object():
    parsed = parse_money({"amount": "1250.50", "currency": "CNH"})

    assert parsed == Money(Decimal("1250.50"), "CNH")
    assert parsed.currency.code == "CNH"


@pytest.mark.parametrize(
    "value",
    [None, "1250.00 HKD", "1250.00", 1250, ["1250.00", "HKD"], ("1250.00", "HKD"), Money("1.00", "HKD")],
)
def test_parse_money_refuses_anything_but_an_object(value):
    with pytest.raises(MoneyParseError) as caught:
        parse_money(value)
    assert caught.value.code == "money_malformed"


@pytest.mark.parametrize(
    ("value", "code", "field"),
    [
        ({"amount": "1.00"}, "unknown_currency", "price.currency"),
        ({"amount": "1.00", "currency": "CNY"}, "unknown_currency", "price.currency"),
        ({"amount": "1.00", "currency": "cnh"}, "unknown_currency", "price.currency"),
        ({"currency": "HKD"}, "amount_not_string", "price.amount"),
        ({"amount": 1.0, "currency": "HKD"}, "amount_not_string", "price.amount"),
        ({"amount": 1, "currency": "HKD"}, "amount_not_string", "price.amount"),
        ({"amount": "1e2", "currency": "HKD"}, "amount_exponent", "price.amount"),
        ({"amount": "Infinity", "currency": "USD"}, "amount_not_finite", "price.amount"),
        ({"amount": "1,00", "currency": "HKD"}, "amount_malformed", "price.amount"),
        ({"amount": "1.000", "currency": "CNH"}, "amount_too_precise", "price.amount"),
        ({"amount": "0.00", "currency": "HKD"}, "amount_not_positive", "price.amount"),
        ({"amount": "-3.00", "currency": "HKD"}, "amount_not_positive", "price.amount"),
        ({"amount": "1" + "0" * 20, "currency": "HKD"}, "amount_too_large", "price.amount"),
    ],
)
def test_parse_money_reports_the_code_and_the_field_at_fault(value, code, field):
    with pytest.raises(MoneyParseError) as caught:
        parse_money(value, field="price")

    assert (caught.value.code, caught.value.field) == (code, field)


def test_parse_money_allows_zero_only_when_asked():
    assert parse_money({"amount": "0.00", "currency": "USD"}, allow_zero=True) == Money("0.00", "USD")


# --- minor units ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("12.34"), "HKD", 1234),
        (Decimal("12.3"), "USD", 1230),
        (Decimal("12"), "CNH", 1200),
        (Decimal("0.01"), "HKD", 1),
        (Decimal("1E+2"), "HKD", 10000),
        (Decimal("999999999999999.99"), "CNH", 99999999999999999),
    ],
)
def test_to_minor_is_exact(amount, currency, minor):
    assert to_minor(amount, currency) == minor
    assert to_minor(Money(amount, currency)) == minor
    assert from_minor(minor, currency) == amount


@pytest.mark.parametrize("amount", [Decimal("12.345"), Decimal("0.001"), Decimal("0.0000001"), Decimal("1.005")])
def test_to_minor_refuses_to_round(amount):
    with pytest.raises(ValueError, match="more places"):
        to_minor(amount, "HKD")
    with pytest.raises(ValueError, match="more places"):
        to_minor(Money(amount, "CNH"))


def test_from_minor_gives_the_currencys_places():
    assert str(from_minor(5, "HKD")) == "0.05"
    assert str(from_minor(100, "CNH")) == "1.00"
    assert str(from_minor(-1234, "USD")) == "-12.34"
    assert str(money.money_from_minor(123456, "CNH").amount) == "1234.56"


@given(minor=st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1), currency=st.sampled_from(money.CURRENCY_CODES))
def test_minor_units_round_trip_exactly(minor, currency):
    assert to_minor(from_minor(minor, currency), currency) == minor


@given(minor=st.integers(min_value=1, max_value=99999999999999999), currency=st.sampled_from(money.CURRENCY_CODES))
def test_the_wire_form_parses_back_to_the_same_minor_units(minor, currency):
    wire = money.money_to_json(money.money_from_minor(minor, currency))

    assert to_minor(parse_money(wire)) == minor


def test_fx_rounding_favours_the_platform():
    assert money.round_up(Decimal("10.001"), "HKD") == Decimal("10.01")
    assert money.round_down(Decimal("10.009"), "HKD") == Decimal("10.00")
    assert money.round_up(Decimal("-10.001"), "HKD") == Decimal("-10.00")
    assert money.round_down(Decimal("-10.001"), "HKD") == Decimal("-10.01")
    assert money.round_up(Decimal("10.00"), "HKD") == money.round_down(Decimal("10.00"), "HKD")


def test_the_currency_table_is_pinned_here():
    assert money.CURRENCY_CODES == ("HKD", "USD", "CNH")
    assert all(money.places(code) == 2 for code in money.CURRENCY_CODES)
    assert money.currency_check_sql("currency") == "currency IN ('HKD', 'USD', 'CNH')"


# --- CNH round trips: model field, form, JSON -----------------------------------------------------

CNH_AMOUNTS = ["0.01", "1234567.89", "999999999999999.99", "10.10"]


@pytest.mark.django_db
@pytest.mark.parametrize("text", CNH_AMOUNTS)
def test_cnh_survives_a_model_field(text):
    volume = ExpectedVolume.objects.create(
        enterprise=EnterpriseFactory(), monthly_volume=Money(parse_amount(text, "CNH"), "CNH")
    )

    stored = ExpectedVolume.objects.get(pk=volume.pk)

    assert stored.monthly_volume.currency.code == "CNH"
    assert str(stored.monthly_volume.amount) == text
    assert stored.monthly_volume == Money(Decimal(text), "CNH")


@pytest.mark.django_db
def test_cnh_in_the_database_is_the_code_and_an_exact_numeric():
    from django.db import connection

    volume = ExpectedVolume.objects.create(enterprise=EnterpriseFactory(), monthly_volume=Money("1234567.89", "CNH"))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT monthly_volume, monthly_volume_currency FROM corporates_expectedvolume WHERE id = %s", [volume.pk]
        )
        amount, currency = cursor.fetchone()
    assert (amount, currency) == (Decimal("1234567.89"), "CNH")


class VolumeForm(forms.ModelForm):
    class Meta:
        model = ExpectedVolume
        fields = ["monthly_volume"]


@pytest.mark.django_db
@pytest.mark.parametrize("text", CNH_AMOUNTS)
def test_cnh_survives_a_model_form_bound_cleaned_and_saved(text):
    enterprise = EnterpriseFactory()
    form = VolumeForm(data={"monthly_volume_0": text, "monthly_volume_1": "CNH"})

    assert form.is_valid(), form.errors
    assert form.cleaned_data["monthly_volume"] == Money(Decimal(text), "CNH")
    volume = form.save(commit=False)
    volume.enterprise = enterprise
    volume.save()

    # Render the saved row into a form again and re-save it: nothing drifts.
    stored = ExpectedVolume.objects.get(pk=volume.pk)
    again = VolumeForm(
        data={"monthly_volume_0": str(stored.monthly_volume.amount), "monthly_volume_1": "CNH"}, instance=stored
    )
    assert again.is_valid(), again.errors
    again.save()
    stored.refresh_from_db()
    assert stored.monthly_volume == Money(Decimal(text), "CNH")
    assert str(stored.monthly_volume.amount) == text


def test_cnh_survives_a_djmoney_form_field():
    class PaymentForm(forms.Form):
        amount = MoneyFormField(currency_choices=money.CURRENCY_CHOICES, decimal_places=2, max_digits=20)

    form = PaymentForm(data={"amount_0": "88888.88", "amount_1": "CNH"})

    assert form.is_valid(), form.errors
    assert form.cleaned_data["amount"] == Money(Decimal("88888.88"), "CNH")
    assert 'value="CNH" selected' in str(PaymentForm(initial={"amount": form.cleaned_data["amount"]})["amount"])


def test_a_djmoney_form_field_refuses_cny():
    class PaymentForm(forms.Form):
        amount = MoneyFormField(currency_choices=money.CURRENCY_CHOICES, decimal_places=2, max_digits=20)

    form = PaymentForm(data={"amount_0": "1.00", "amount_1": "CNY"})

    assert not form.is_valid()


@pytest.mark.parametrize("text", CNH_AMOUNTS)
def test_cnh_survives_json(text):
    original = Money(Decimal(text), "CNH")

    wire = json.dumps({"price": money_to_json(original)})
    parsed = parse_money(json.loads(wire)["price"])

    assert json.loads(wire)["price"] == {"amount": text, "currency": "CNH"}
    assert parsed == original
    assert str(parsed.amount) == text
    assert parsed.currency.code == "CNH"


def test_money_to_json_writes_every_place():
    assert money_to_json(Money("5", "CNH")) == {"amount": "5.00", "currency": "CNH"}
    assert money.Amount(minor=5, currency="HKD").to_json() == {"amount": "0.05", "currency": "HKD"}


def test_cnh_is_its_own_currency_not_cny():
    cnh = Money("1.00", "CNH")

    assert cnh.currency.code == "CNH"
    assert cnh != Money("1.00", "CNY")
    assert money.CURRENCY_NAMES["CNH"] == "Chinese yuan (offshore)"

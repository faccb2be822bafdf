"""Money: the one module that knows the platform's currencies and converts amounts.

Every amount on the platform is exact. Outside the ledger an amount is a
``Decimal`` quantized to its currency's minor unit (or a ``moneyed.Money``
holding one); inside the ledger it is an integer count of minor units. This
module is the only place that converts between the two, and the only place
that parses money arriving from outside (API, CSV, forms).

CNH (offshore renminbi) is not in ISO 4217. py-moneyed 3.0 happens to ship it;
we still register it here, once, so that the platform does not depend on that
accident, and pin the table of the three currencies the platform issues.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

import moneyed
from moneyed import Money

# Code -> number of decimal places. Every currency column has a CHECK
# constraint built from this table (django-money does not enforce its list).
CURRENCY_PLACES: dict[str, int] = {"HKD": 2, "USD": 2, "CNH": 2}
CURRENCY_CODES: tuple[str, ...] = tuple(CURRENCY_PLACES)
CURRENCY_NAMES: dict[str, str] = {
    "HKD": "Hong Kong dollar",
    "USD": "US dollar",
    "CNH": "Chinese yuan (offshore)",
}
CURRENCY_CHOICES: list[tuple[str, str]] = [(code, f"{code} — {name}") for code, name in CURRENCY_NAMES.items()]


def _register_cnh() -> None:
    try:
        moneyed.get_currency("CNH")
    except moneyed.CurrencyDoesNotExist:  # pragma: no cover - depends on the py-moneyed release
        moneyed.add_currency(code="CNH", numeric=None, name="Chinese Yuan (offshore)", countries=("HONG KONG",))


_register_cnh()


class MoneyParseError(ValueError):
    """Money from outside was refused; ``code`` is stable and machine-readable."""

    def __init__(self, code: str, message: str, field: str = "amount") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


# A plain decimal: optional sign, digits, optional fraction. No exponent, no
# spaces, no thousands separators, no "NaN"/"Infinity". ASCII digits only:
# without re.ASCII, \d (and Decimal()) would read "١٢" or "１２" as 12.
_DECIMAL_RE = re.compile(r"^[+-]?(\d+)(\.(\d*))?$|^[+-]?\.(\d+)$", re.ASCII)
_MAX_DIGITS = 17  # integer digits; keeps every amount inside a signed 64-bit minor-unit count


def places(currency: str) -> int:
    return CURRENCY_PLACES[currency]


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-CURRENCY_PLACES[currency])


def parse_currency(value: Any, *, field: str = "currency") -> str:
    if not isinstance(value, str) or value not in CURRENCY_PLACES:
        raise MoneyParseError(
            "unknown_currency",
            f"Currency must be one of {', '.join(CURRENCY_CODES)}.",
            field,
        )
    return value


def parse_amount(value: Any, currency: str, *, allow_zero: bool = False, field: str = "amount") -> Decimal:
    """Parse an amount that came from outside. Decimal strings only.

    Rejects, each with its own code: non-strings (floats and ints included,
    ``amount_not_string``), exponent notation (``amount_exponent``), NaN and
    Infinity (``amount_not_finite``), anything else that is not a plain decimal
    (``amount_malformed``), more decimals than the currency has
    (``amount_too_precise``), zero or negative amounts (``amount_not_positive``)
    and amounts too large to hold (``amount_too_large``).
    """
    currency = parse_currency(currency)
    if isinstance(value, bool) or not isinstance(value, str):
        kind = "a float" if isinstance(value, float) else type(value).__name__
        raise MoneyParseError(
            "amount_not_string", f'Amount must be a decimal string such as "1250.00", not {kind}.', field
        )
    text = value.strip()
    if text != value or not text:
        raise MoneyParseError("amount_malformed", "Amount must be a plain decimal string.", field)
    lowered = text.lower().lstrip("+-")
    if lowered in {"nan", "snan", "inf", "infinity"}:
        raise MoneyParseError("amount_not_finite", "Amount must be a finite number.", field)
    if "e" in lowered and _looks_exponent(lowered):
        raise MoneyParseError("amount_exponent", "Exponent notation is not accepted; write the amount in full.", field)
    match = _DECIMAL_RE.match(text)
    if not match:
        raise MoneyParseError("amount_malformed", "Amount must be a plain decimal string.", field)
    try:
        amount = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise MoneyParseError("amount_malformed", "Amount must be a plain decimal string.", field) from None
    fraction = match.group(3) or match.group(4) or ""
    if len(fraction) > CURRENCY_PLACES[currency]:
        raise MoneyParseError(
            "amount_too_precise",
            f"{currency} has {CURRENCY_PLACES[currency]} decimal places; the amount has more.",
            field,
        )
    # The sign, not just the value: "-0.00" is zero but would come back as Decimal("-0.00").
    if text.startswith("-") or (amount == 0 and not allow_zero):
        raise MoneyParseError("amount_not_positive", "Amount must be greater than zero.", field)
    if len((match.group(1) or "").lstrip("0")) > _MAX_DIGITS - CURRENCY_PLACES[currency]:
        raise MoneyParseError("amount_too_large", "Amount is too large.", field)
    return amount.quantize(quantum(currency))


def _looks_exponent(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def parse_money(value: Any, *, field: str = "amount", allow_zero: bool = False) -> Money:
    """Parse ``{"amount": "1250.00", "currency": "HKD"}`` into a ``Money``."""
    if not isinstance(value, dict):
        raise MoneyParseError("money_malformed", 'Money must be an object {"amount": "…", "currency": "…"}.', field)
    currency = parse_currency(value.get("currency"), field=f"{field}.currency")
    amount = parse_amount(value.get("amount"), currency, allow_zero=allow_zero, field=f"{field}.amount")
    return Money(amount, currency)


# --- conversions -----------------------------------------------------------


def to_minor(amount: Decimal | Money, currency: str | None = None) -> int:
    """Exact Decimal (or Money) -> integer minor units. Refuses to round."""
    if isinstance(amount, Money):
        currency, amount = amount.currency.code, amount.amount
    assert currency is not None
    scaled = amount.scaleb(CURRENCY_PLACES[currency])
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more places than {currency} allows")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-CURRENCY_PLACES[currency]).quantize(quantum(currency))


def money_from_minor(minor: int, currency: str) -> Money:
    return Money(from_minor(minor, currency), currency)


def round_up(amount: Decimal, currency: str) -> Decimal:
    """What the client pays: rounded up to the minor unit (FX)."""
    return amount.quantize(quantum(currency), rounding=ROUND_CEILING)


def round_down(amount: Decimal, currency: str) -> Decimal:
    """What the client receives: rounded down to the minor unit (FX)."""
    return amount.quantize(quantum(currency), rounding=ROUND_FLOOR)


def format_amount(amount: Decimal, currency: str) -> str:
    """The wire form of an amount: a decimal string with exactly the currency's places."""
    return str(amount.quantize(quantum(currency)))


def money_to_json(money: Money) -> dict[str, str]:
    code = money.currency.code
    return {"amount": format_amount(money.amount, code), "currency": code}


@dataclass(frozen=True)
class Amount:
    """Integer minor units with their currency: the ledger's view of money."""

    minor: int
    currency: str

    def to_json(self) -> dict[str, str]:
        return {
            "amount": format_amount(from_minor(self.minor, self.currency), self.currency),
            "currency": self.currency,
        }


def currency_check_sql(column: str) -> str:
    """SQL for a CHECK constraint that restricts a currency column to the table above."""
    codes = ", ".join(f"'{code}'" for code in CURRENCY_CODES)
    return f"{column} IN ({codes})"

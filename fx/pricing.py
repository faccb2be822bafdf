"""FX pricing: the ONE place that turns USD legs into pair rates and quotes into amounts.

Pure functions, no database. Every rate the platform shows or honours is
derived here from the two USD legs (USD/HKD and USD/CNH, "units of the
currency per 1 USD"), so that any set of quotes issued from the same legs is
consistent:

* the exact mid of a pair A→B (units of B per 1 A) is ``usd[B] / usd[A]``, a
  rational number, so that going round any cycle of mids multiplies to
  exactly 1;
* the client rate is that exact mid less the spread, rounded DOWN to
  ``RATE_PLACES`` places: it is never above the exact mid;
* amounts follow DESIGN.md: what the client pays is rounded up to the minor
  unit, what it receives is rounded down.

Together these mean no round trip (A→B→A, A→B→C→A, with any amounts and any
spread ≥ 0) returns more than it started with: the residue of every rounding
stays with the platform. The arithmetic is done with ``Fraction`` (exact) and
only the final values become ``Decimal``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from config import money

BASE_CURRENCY = "USD"
RATE_PLACES = 10
BPS = 10_000


class FixedSide:
    """Which amount the client fixed: the other one is computed."""

    SELL = "sell"
    BUY = "buy"


def _to_decimal_floor(value: Fraction, places: int) -> Decimal:
    scaled = math.floor(value * 10**places)
    return Decimal(scaled).scaleb(-places)


def _to_decimal_ceiling(value: Fraction, places: int) -> Decimal:
    scaled = math.ceil(value * 10**places)
    return Decimal(scaled).scaleb(-places)


def _to_decimal_nearest(value: Fraction, places: int) -> Decimal:
    scaled = round(value * 10**places)  # half-even on a Fraction: exact
    return Decimal(scaled).scaleb(-places)


def usd_leg(legs: dict[str, Decimal], currency: str) -> Fraction:
    """Units of ``currency`` per 1 USD, as an exact fraction (USD itself is 1)."""
    if currency == BASE_CURRENCY:
        return Fraction(1)
    return Fraction(legs[currency])


def exact_mid(legs: dict[str, Decimal], *, sell: str, buy: str) -> Fraction:
    """Units of ``buy`` per 1 unit of ``sell``, exactly, from the USD legs."""
    return usd_leg(legs, buy) / usd_leg(legs, sell)


def exact_client_rate(legs: dict[str, Decimal], *, sell: str, buy: str, spread_bps: int) -> Fraction:
    return exact_mid(legs, sell=sell, buy=buy) * Fraction(BPS - spread_bps, BPS)


def display_mid(legs: dict[str, Decimal], *, sell: str, buy: str) -> Decimal:
    """The mid as shown and stored: the exact mid to RATE_PLACES, nearest."""
    return _to_decimal_nearest(exact_mid(legs, sell=sell, buy=buy), RATE_PLACES)


def client_rate(legs: dict[str, Decimal], *, sell: str, buy: str, spread_bps: int) -> Decimal:
    """The rate the client gets: exact mid less the spread, rounded down (never above the mid)."""
    if not 0 <= spread_bps < BPS:
        raise ValueError("spread_bps must be in [0, 10000)")
    return _to_decimal_floor(exact_client_rate(legs, sell=sell, buy=buy, spread_bps=spread_bps), RATE_PLACES)


@dataclass(frozen=True)
class Priced:
    """The two exact amounts of a quote, in each currency's minor unit."""

    sell_amount: Decimal
    buy_amount: Decimal


def amounts_for(*, rate: Decimal, sell_currency: str, buy_currency: str, fixed_side: str, amount: Decimal) -> Priced:
    """Both exact amounts of a quote at ``rate`` (buy units per 1 sell unit).

    Fixed sell: the client pays ``amount`` and receives ``amount × rate``
    rounded down. Fixed buy: the client receives ``amount`` and pays
    ``amount ÷ rate`` rounded up. Either way ``buy ≤ sell × rate``.
    """
    exact_rate = Fraction(rate)
    if fixed_side == FixedSide.SELL:
        sell = amount
        buy = _to_decimal_floor(Fraction(amount) * exact_rate, money.places(buy_currency))
    elif fixed_side == FixedSide.BUY:
        buy = amount
        sell = _to_decimal_ceiling(Fraction(amount) / exact_rate, money.places(sell_currency))
    else:
        raise ValueError(f"unknown fixed side {fixed_side!r}")
    return Priced(
        sell_amount=sell.quantize(money.quantum(sell_currency)),
        buy_amount=buy.quantize(money.quantum(buy_currency)),
    )


def usd_value(legs: dict[str, Decimal], *, currency: str, amount: Decimal) -> Decimal:
    """An amount's value in USD at the mid, rounded up to the cent (for the single-swap limit)."""
    return _to_decimal_ceiling(Fraction(amount) / usd_leg(legs, currency), money.places(BASE_CURRENCY))


def pairs(currencies: tuple[str, ...] = money.CURRENCY_CODES) -> list[tuple[str, str]]:
    """Every directed pair (sell, buy) of distinct platform currencies: six for three."""
    return [(sell, buy) for sell in currencies for buy in currencies if sell != buy]

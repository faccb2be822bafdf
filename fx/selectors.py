"""Reads on FX: current rates and their history, pricing terms, quotes, swaps, inventory."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from config import money
from config.db import is_postgresql
from corporates.models import Enterprise
from fx import pricing
from fx.models import (
    EnterpriseFxTerms,
    InventoryAlert,
    InventoryFloor,
    Quote,
    RateTick,
    Swap,
)
from settlement.ledger.models import Account, AccountKind

NON_USD = tuple(code for code in money.CURRENCY_CODES if code != pricing.BASE_CURRENCY)


@dataclass(frozen=True)
class CurrentRates:
    """The latest published USD legs. ``published_at`` is the oldest leg's time (what staleness judges)."""

    legs: dict[str, Decimal]
    sources: dict[str, str]
    published_at: datetime | None
    missing: tuple[str, ...] = field(default=())

    def is_stale(self, *, now: datetime) -> bool:
        if self.missing or self.published_at is None:
            return True
        return now - self.published_at > timedelta(seconds=settings.FX_RATES_STALE_AFTER_SECONDS)


def _latest_tick(currency: str) -> QuerySet:
    return (
        RateTick.objects.filter(currency=currency)
        .order_by("-published_at", "-id")
        .values_list("currency", "mid", "published_at", "source__key")[:1]
    )


# Every quote reads these, so on PostgreSQL they are one prepared-free SQL
# statement each rather than an ORM query compiled per request. Each leg is an
# index lookup on (currency, published_at DESC, id DESC).
_LATEST_TICKS_SQL = " UNION ALL ".join(
    f"""(SELECT t.currency, t.mid, t.published_at, s.key FROM fx_ratetick t
          JOIN fx_ratesource s ON s.id = t.source_id
         WHERE t.currency = '{code}' ORDER BY t.published_at DESC, t.id DESC LIMIT 1)"""
    for code in NON_USD
)


def rates_current() -> CurrentRates:
    """The latest tick of each USD leg, in one statement."""
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(_LATEST_TICKS_SQL)
            rows = cursor.fetchall()
    else:  # SQLite (the embedded default): the ORM, one query per leg
        rows = [row for currency in NON_USD for row in _latest_tick(currency)]
    legs: dict[str, Decimal] = {}
    sources: dict[str, str] = {}
    times: list[datetime] = []
    for currency, mid, published_at, source_key in rows:
        legs[currency], sources[currency] = mid, source_key
        times.append(published_at)
    missing = tuple(currency for currency in NON_USD if currency not in legs)
    return CurrentRates(legs=legs, sources=sources, published_at=min(times) if times else None, missing=missing)


def rates_history(*, currency: str, since: datetime, limit: int = 2000) -> list[tuple[datetime, Decimal, str]]:
    """(published_at, mid, source key) of one USD leg since ``since``, oldest first, at most ``limit`` points."""
    rows = list(
        RateTick.objects.filter(currency=currency, published_at__gte=since)
        .order_by("-published_at", "-id")
        .values_list("published_at", "mid", "source__key")[:limit]
    )
    rows.reverse()
    return rows


@dataclass(frozen=True)
class Terms:
    spread_bps: int
    single_swap_limit_usd: Decimal
    tier_name: str


# Every GET /fx/rates reads the terms: on PostgreSQL one SQL statement, not a
# select_related() queryset compiled per request (a fifth of the request's
# CPU, docs/benchmarks.md, FX).
_TERMS_SQL = """
SELECT tier.spread_bps, terms.single_swap_limit_usd, tier.name
  FROM fx_enterprisefxterms terms
  JOIN fx_pricingtier tier ON tier.id = terms.tier_id
 WHERE terms.enterprise_id = %s
"""


def terms_for(*, enterprise: Enterprise) -> Terms:
    if not is_postgresql():
        return terms_from(EnterpriseFxTerms.objects.select_related("tier").filter(enterprise_id=enterprise.pk).first())
    with connection.cursor() as cursor:
        cursor.execute(_TERMS_SQL, [enterprise.pk])
        row = cursor.fetchone()
    return _terms(*(row or (None, None, None)))


def _terms(spread_bps: int | None, limit: Decimal | None, tier_name: str | None) -> Terms:
    """Terms from a row's columns; without a terms row (all None) the settings' defaults."""
    return Terms(
        settings.FX_DEFAULT_SPREAD_BPS if spread_bps is None else spread_bps,
        limit or Decimal(settings.FX_DEFAULT_SINGLE_SWAP_LIMIT_USD),
        tier_name or "Default",
    )


def terms_from(row: EnterpriseFxTerms | None) -> Terms:
    """Terms from an already loaded row (or the settings' defaults without one)."""
    if row is None:
        return _terms(None, None, None)
    return _terms(row.tier.spread_bps, row.single_swap_limit_usd, row.tier.name)


@dataclass(frozen=True)
class PairRate:
    sell_currency: str
    buy_currency: str
    mid_rate: Decimal
    client_rate: Decimal


def indicative_rates(*, rates: CurrentRates, spread_bps: int) -> list[PairRate]:
    """Mid and client rate of each of the six pairs (indicative: a quote is what is firm)."""
    return list(_indicative_rates(tuple(sorted(rates.legs.items())), spread_bps))


# A pure function of the legs and the spread, which change a few times a
# minute at most, while every GET /fx/rates asks for it: the twelve exact
# Fraction computations were an eighth of that request's CPU
# (docs/benchmarks.md, FX). Remembered per process for the last few inputs.
@functools.lru_cache(maxsize=32)
def _indicative_rates(legs: tuple[tuple[str, Decimal], ...], spread_bps: int) -> tuple[PairRate, ...]:
    by_currency = dict(legs)
    return tuple(
        PairRate(
            sell,
            buy,
            pricing.display_mid(by_currency, sell=sell, buy=buy),
            pricing.client_rate(by_currency, sell=sell, buy=buy, spread_bps=spread_bps),
        )
        for sell, buy in pricing.pairs()
    )


def quote_get(*, enterprise: Enterprise, public_id: str) -> Quote | None:
    return Quote.objects.filter(enterprise_id=enterprise.pk, public_id=public_id).first()


def quotes_for(*, enterprise: Enterprise) -> QuerySet[Quote]:
    return Quote.objects.filter(enterprise_id=enterprise.pk)


def swaps_for(
    *,
    enterprise: Enterprise,
    currency: str | None = None,
    sell_currency: str | None = None,
    buy_currency: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Swap]:
    """An enterprise's swaps, newest first, filtered. ``currency`` matches either side."""
    swaps = Swap.objects.filter(enterprise_id=enterprise.pk).select_related("quote", "journal_entry")
    if currency:
        swaps = swaps.filter(sell_currency=currency) | swaps.filter(buy_currency=currency)
    if sell_currency:
        swaps = swaps.filter(sell_currency=sell_currency)
    if buy_currency:
        swaps = swaps.filter(buy_currency=buy_currency)
    if since:
        swaps = swaps.filter(accepted_at__gte=since)
    if until:
        swaps = swaps.filter(accepted_at__lt=until)
    return swaps.order_by("-accepted_at", "-id")


def inventory_floor_for(*, currency: str) -> Decimal:
    floor = InventoryFloor.objects.filter(currency=currency).values_list("floor", flat=True).first()
    return floor if floor is not None else Decimal(0)


def floor_subquery(currency_ref: str = "currency") -> Subquery:
    """The floor of the outer row's currency (NULL when none is set), for annotating account queries."""
    return Subquery(InventoryFloor.objects.filter(currency=OuterRef(currency_ref)).values("floor")[:1])


@dataclass(frozen=True)
class InventoryNow:
    balance: Decimal
    floor: Decimal


_TERMS_AND_INVENTORY_SQL = """
SELECT a.balance, f.floor, tier.spread_bps, terms.single_swap_limit_usd, tier.name
  FROM settlement_account a
  LEFT JOIN fx_inventoryfloor f ON f.currency = a.currency
  LEFT JOIN fx_enterprisefxterms terms ON terms.enterprise_id = %s
  LEFT JOIN fx_pricingtier tier ON tier.id = terms.tier_id
 WHERE a.enterprise_id IS NULL AND a.kind = 'fx_inventory' AND a.currency = %s
"""


def terms_and_inventory(*, enterprise: Enterprise, currency: str) -> tuple[Terms, InventoryNow]:
    """What a quote needs besides the rates: the enterprise's terms, the inventory it pays from and its floor."""
    if not is_postgresql():
        return terms_for(enterprise=enterprise), inventory_now(currency=currency)
    with connection.cursor() as cursor:
        cursor.execute(_TERMS_AND_INVENTORY_SQL, [enterprise.pk, currency])
        row = cursor.fetchone()
    balance, floor, spread_bps, limit, tier_name = row or (0, None, None, None, None)
    inventory = InventoryNow(money.from_minor(balance, currency), floor if floor is not None else Decimal(0))
    return _terms(spread_bps, limit, tier_name), inventory


def inventory_now(*, currency: str) -> InventoryNow:
    """The platform's FX inventory in ``currency`` and its floor, in one query (not locked)."""
    row = (
        Account.objects.filter(enterprise__isnull=True, kind=AccountKind.FX_INVENTORY, currency=currency)
        .annotate(floor=floor_subquery())
        .values_list("balance", "floor")
        .first()
    )
    balance, floor = row or (0, None)
    return InventoryNow(money.from_minor(balance, currency), floor if floor is not None else Decimal(0))


@dataclass(frozen=True)
class InventoryLine:
    currency: str
    balance: Decimal
    floor: Decimal
    open_alerts: int

    @property
    def below_floor(self) -> bool:
        return self.balance < self.floor


def inventory_line(*, currency: str) -> InventoryLine:
    """The platform's FX inventory in one currency, with its floor and open alerts."""
    now = inventory_now(currency=currency)
    alerts = InventoryAlert.objects.filter(currency=currency, acknowledged_at__isnull=True).count()
    return InventoryLine(currency, now.balance, now.floor, alerts)


def inventory_status() -> list[InventoryLine]:
    """The platform's FX inventory per currency, with its floor and open alerts (back office)."""
    return [inventory_line(currency=code) for code in money.CURRENCY_CODES]

"""Writes on FX: publishing rates, manual rates, quoting, accepting, inventory alerts.

Accounting model: the platform is the counterparty of every swap, from its
``fx_inventory`` accounts. ``quote_accept`` posts ONE journal entry through
``settlement.ledger.services.ledger_post`` (the only writer of the ledger),
with four legs, for exactly the amounts the quote showed:

    debit  enterprise wallet (sold currency)      sell_amount   (wallet shrinks)
    credit platform fx_inventory (sold currency)  sell_amount   (inventory grows)
    debit  platform fx_inventory (bought currency) buy_amount   (inventory shrinks)
    credit enterprise wallet (bought currency)     buy_amount   (wallet grows)

Each currency sums to zero, so no token is created or destroyed; the rounding
residue of the quote (``sell × client rate − buy``) is simply value the
platform keeps, in the currency it receives.

Time is injected: every service takes ``now`` (default ``timezone.now()``),
so tests can stand exactly on an expiry boundary.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from config import money
from config.db import is_postgresql, run_in_transaction
from config.errors import DomainError
from corporates.models import Enterprise
from corporates.services import enterprise_require_active
from fx import pricing, selectors
from fx.models import (
    InventoryAlert,
    InventoryAlertKind,
    ManualRate,
    Quote,
    QuoteStatus,
    RateSource,
    RateTick,
    Swap,
)
from fx.rates import source_class
from settlement.ledger.models import Account, AccountKind, EntryKind
from settlement.ledger.services import InsufficientFunds, Leg, ledger_post

logger = logging.getLogger(__name__)

# --- errors --------------------------------------------------------------------


class RatesStale(DomainError):
    code = "rates_stale"
    title = "No fresh rate is available; quoting is paused until the rates are published again."
    http_status = 503


class ManualRateOutOfBounds(DomainError):
    code = "manual_rate_out_of_bounds"
    title = "The manual rate is outside the range allowed for its currency."
    http_status = 422


class FxPairInvalid(DomainError):
    code = "fx_pair_invalid"
    title = "A swap needs two different platform currencies."
    http_status = 422


class QuoteAmountInvalid(DomainError):
    code = "quote_amount_invalid"
    title = "Give exactly one of the sell amount or the buy amount, positive, in the currency's minor unit."
    http_status = 422


class QuoteAmountTooSmall(DomainError):
    code = "quote_amount_too_small"
    title = "The amount is too small: the other side would round to nothing."
    http_status = 422


class SwapLimitExceeded(DomainError):
    code = "swap_limit_exceeded"
    title = "The swap is larger than the enterprise's single-swap limit."
    http_status = 422


class InventoryFloorBreached(DomainError):
    code = "inventory_floor_breached"
    title = "The platform cannot make this swap now: its inventory would fall below its floor."
    http_status = 409


class InventoryInsufficient(DomainError):
    code = "fx_inventory_insufficient"
    title = "The platform's inventory in the bought currency cannot cover this swap."
    http_status = 409


class WalletInsufficientFunds(DomainError):
    code = "insufficient_funds"
    title = "The wallet does not hold enough of the sold currency."
    http_status = 422


class QuoteNotFound(DomainError):
    code = "quote_not_found"
    title = "No such quote."
    http_status = 404


class QuoteExpired(DomainError):
    code = "quote_expired"
    title = "The quote has expired; ask for a new one."
    http_status = 409


class QuoteAlreadyAccepted(DomainError):
    code = "quote_already_accepted"
    title = "The quote has already been accepted."
    http_status = 409


# --- rates -----------------------------------------------------------------------


def rates_publish(*, now: datetime | None = None) -> list[RateTick]:
    """Ask every active source for USD legs; the highest priority wins per currency; store the winners.

    The source rows are locked, so that two publishers (two beat runs, or a
    manual rate saved during a run) do not fork the feed's walk.
    """
    now = now or timezone.now()

    def publish() -> list[RateTick]:
        rows = list(RateSource.objects.select_for_update().filter(is_active=True).order_by("-priority", "key"))
        winners: dict[str, tuple[RateSource, Decimal]] = {}
        for row in rows:
            cls = source_class(row.key)
            if cls is None:
                logger.warning("fx: rate source %r has no class in fx.rates; skipped", row.key)
                continue
            before = dict(row.state or {})
            offered = cls(row).offer(now=now)
            if row.state != before:
                row.save(update_fields=["state", "updated_at"])
            for currency, mid in offered.items():
                if currency not in selectors.NON_USD or mid <= 0:
                    logger.warning("fx: source %r offered an invalid leg %r=%r; skipped", row.key, currency, mid)
                    continue
                winners.setdefault(currency, (row, mid))
        return RateTick.objects.bulk_create(
            RateTick(
                source=row,
                currency=currency,
                mid=mid.quantize(Decimal(1).scaleb(-pricing.RATE_PLACES)),
                published_at=now,
            )
            for currency, (row, mid) in sorted(winners.items())
        )

    return run_in_transaction(publish)


def manual_rate_validate(*, currency: str, mid: Decimal) -> None:
    """Refuse a manual leg that could not be right (the admin form asks this before saving)."""
    if currency not in selectors.NON_USD:
        raise FxPairInvalid(f"Manual rates are USD legs: one of {', '.join(selectors.NON_USD)}.")
    # A typo in an override would be quoted to every client at once: refuse a
    # leg outside its sane range (for HKD, the band of the peg).
    low, high = (Decimal(bound) for bound in settings.FX_MANUAL_RATE_BOUNDS[currency])
    if not low <= mid <= high:
        raise ManualRateOutOfBounds(f"USD/{currency} must be between {low} and {high}; {mid} is not.")


def manual_rate_set(
    *, currency: str, mid: Decimal, note: str = "", set_by=None, now: datetime | None = None
) -> ManualRate:
    """Make ``mid`` the active manual USD leg of ``currency`` and publish at once (it overrides the feed)."""
    manual_rate_validate(currency=currency, mid=mid)

    def save() -> ManualRate:
        ManualRate.objects.filter(currency=currency, is_active=True).update(is_active=False)
        rate = ManualRate.objects.create(currency=currency, mid=mid, note=note, set_by=set_by, is_active=True)
        rates_publish(now=now)
        return rate

    return run_in_transaction(save)


def manual_rate_deactivate(*, manual_rate: ManualRate, now: datetime | None = None) -> None:
    """Stop overriding: the next rates (published at once) come from the feed again."""

    def save() -> None:
        ManualRate.objects.filter(pk=manual_rate.pk).update(is_active=False)
        rates_publish(now=now)

    run_in_transaction(save)


# --- quotes ----------------------------------------------------------------------


def quote_create(
    *,
    enterprise: Enterprise,
    sell_currency: str,
    buy_currency: str,
    sell_amount: Decimal | None = None,
    buy_amount: Decimal | None = None,
    now: datetime | None = None,
) -> Quote:
    """Issue a firm quote for selling ``sell_currency`` and buying ``buy_currency``.

    Exactly one amount is given; the other is computed at the client rate
    (the enterprise's spread off the mid), the client paying rounded up and
    receiving rounded down. Refused when the enterprise is not active, the
    rates are stale, the swap exceeds the enterprise's single-swap limit, or
    the platform's inventory would fall below its floor (which also raises an
    alert for the back office).
    """
    now = now or timezone.now()
    enterprise_require_active(enterprise=enterprise)
    if sell_currency not in money.CURRENCY_PLACES or buy_currency not in money.CURRENCY_PLACES:
        raise FxPairInvalid(f"Currencies must be among {', '.join(money.CURRENCY_CODES)}.")
    if sell_currency == buy_currency:
        raise FxPairInvalid()
    fixed_side, amount, amount_currency = _fixed_amount(sell_currency, buy_currency, sell_amount, buy_amount)
    try:
        money.to_minor(amount, amount_currency)
    except ValueError:
        raise QuoteAmountInvalid(f"{amount_currency} has {money.places(amount_currency)} decimal places.") from None

    rates = selectors.rates_current()
    if rates.is_stale(now=now):
        raise RatesStale()
    terms, inventory = selectors.terms_and_inventory(enterprise=enterprise, currency=buy_currency)
    rate = pricing.client_rate(rates.legs, sell=sell_currency, buy=buy_currency, spread_bps=terms.spread_bps)
    priced = pricing.amounts_for(
        rate=rate, sell_currency=sell_currency, buy_currency=buy_currency, fixed_side=fixed_side, amount=amount
    )
    if priced.buy_amount <= 0:
        raise QuoteAmountTooSmall()
    usd_value = pricing.usd_value(rates.legs, currency=sell_currency, amount=priced.sell_amount)
    if usd_value > terms.single_swap_limit_usd:
        raise SwapLimitExceeded(
            f"The swap is worth {usd_value} USD; the single-swap limit is {terms.single_swap_limit_usd} USD."
        )
    _require_inventory(buy_currency, inventory, priced.buy_amount, now=now)

    quote = Quote(
        enterprise=enterprise,
        sell_currency=sell_currency,
        buy_currency=buy_currency,
        fixed_side=fixed_side,
        mid_rate=pricing.display_mid(rates.legs, sell=sell_currency, buy=buy_currency),
        client_rate=rate,
        spread_bps=terms.spread_bps,
        sell_amount=priced.sell_amount,
        buy_amount=priced.buy_amount,
        fee_amount=Decimal("0.00"),
        usd_value=usd_value,
        rates_published_at=rates.published_at,
        rate_sources=",".join(f"{code}:{key}" for code, key in sorted(rates.sources.items())),
        status=QuoteStatus.OPEN,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.FX_QUOTE_TTL_SECONDS),
    )
    if _lean_sql():
        _insert_lean(quote, _QUOTE_FIELDS)
    else:
        quote.save(force_insert=True)
    return quote


def _fixed_amount(
    sell_currency: str, buy_currency: str, sell_amount: Decimal | None, buy_amount: Decimal | None
) -> tuple[str, Decimal, str]:
    if (sell_amount is None) == (buy_amount is None):
        raise QuoteAmountInvalid("Give exactly one of the sell amount or the buy amount.")
    if sell_amount is not None:
        side, amount, currency = pricing.FixedSide.SELL, sell_amount, sell_currency
    else:
        assert buy_amount is not None
        side, amount, currency = pricing.FixedSide.BUY, buy_amount, buy_currency
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise QuoteAmountInvalid("The amount must be a positive decimal.")
    return side, amount, currency


def _require_inventory(currency: str, inventory: selectors.InventoryNow, pay_out: Decimal, *, now: datetime) -> None:
    """Refuse a swap the inventory cannot pay, or that would take it below its floor (alerting)."""
    if inventory.balance < pay_out:
        inventory_alert_raise(
            currency=currency,
            kind=InventoryAlertKind.QUOTE_REFUSED,
            balance=inventory.balance,
            floor=inventory.floor,
            detail=f"Refused paying out {pay_out} {currency}: inventory holds {inventory.balance}.",
            now=now,
        )
        raise InventoryInsufficient()
    if inventory.balance - pay_out < inventory.floor:
        inventory_alert_raise(
            currency=currency,
            kind=InventoryAlertKind.QUOTE_REFUSED,
            balance=inventory.balance,
            floor=inventory.floor,
            detail=f"Refused paying out {pay_out} {currency}: would leave {inventory.balance - pay_out}.",
            now=now,
        )
        raise InventoryFloorBreached()


# --- accepting --------------------------------------------------------------------


def quote_accept(*, enterprise: Enterprise, public_id: str, now: datetime | None = None) -> Swap:
    """Accept a quote before it expires: one journal entry swaps wallet and inventory in both currencies.

    Under row locks — the quote, then the four accounts in primary-key order
    (the ledger's order) — every rule is checked; a refusal rolls back, so it
    writes nothing, and two concurrent accepts of one quote make exactly one
    swap (the second waits for the quote's lock and finds it accepted).
    """
    now = now or timezone.now()
    refused: list[tuple[str, selectors.InventoryNow, Decimal]] = []
    try:
        if connection.in_atomic_block:
            # Joined to a caller's transaction: a savepoint of our own, so that
            # a refusal undoes our writes (the quote's status) and only them.
            with transaction.atomic():
                return _accept(enterprise, public_id, now, refused)
        return run_in_transaction(lambda: _accept(enterprise, public_id, now, refused))
    except (InventoryFloorBreached, InventoryInsufficient):
        # The alert is written after the refused transaction, so it survives it.
        currency, inventory, pay_out = refused[-1]
        inventory_alert_raise(
            currency=currency,
            kind=InventoryAlertKind.QUOTE_REFUSED,
            balance=inventory.balance,
            floor=inventory.floor,
            detail=f"Refused accepting {public_id}: paying out {pay_out} {currency} from {inventory.balance}.",
            now=now,
        )
        raise


@dataclass(frozen=True)
class _Accepting:
    """The quote being accepted, as read (and marked accepted) under its row lock."""

    id: int
    public_id: str
    enterprise_id: int
    sell_currency: str
    buy_currency: str
    sell_amount: Decimal
    buy_amount: Decimal
    client_rate: Decimal
    usd_value: Decimal
    single_swap_limit_usd: Decimal | None


def _lean_sql() -> bool:
    """Lean SQL on PostgreSQL (quote insert, the accept path); the ORM elsewhere or when FX_SQL_PATH = "orm"."""
    return is_postgresql() and settings.FX_SQL_PATH != "orm"


def _accept(enterprise: Enterprise, public_id: str, now: datetime, refused: list) -> Swap:
    # 1. Lock the quote, read it with the enterprise's single-swap limit, and
    #    mark it accepted (a refusal below rolls the mark back). This happens
    #    while only the quote's lock is held: the inventory rows locked next
    #    are the platform's hottest, so as little as possible happens after.
    quote = (
        _quote_mark_accepted_lean(enterprise, public_id, now)
        if _lean_sql()
        else _quote_mark_accepted_orm(enterprise, public_id, now)
    )
    # Reads the enterprise's status from the database and holds a share lock
    # on its row to our commit, so a freeze waits for this swap or stops it.
    enterprise_require_active(enterprise=enterprise)
    limit = quote.single_swap_limit_usd or Decimal(settings.FX_DEFAULT_SINGLE_SWAP_LIMIT_USD)
    if quote.usd_value > limit:
        raise SwapLimitExceeded(f"The swap is worth {quote.usd_value} USD; the single-swap limit is {limit} USD.")

    # 2. The four accounts, locked in primary-key order (the ledger's order)
    #    and read under the lock with the bought currency's floor: no other
    #    accept can slip between the check and the post.
    sell_minor = money.to_minor(quote.sell_amount, quote.sell_currency)
    buy_minor = money.to_minor(quote.buy_amount, quote.buy_currency)
    rows = _accounts_lock_lean(quote) if _lean_sql() else _accounts_lock_orm(quote)
    # (kind, currency) -> (id, balance in minor units, floor): plain tuples, no model instances under the lock.
    by_role = {(kind, currency): (account_id, balance, floor) for kind, currency, account_id, balance, floor in rows}
    wallet_sell, wallet_sell_balance, _ = by_role[(AccountKind.WALLET, quote.sell_currency)]
    wallet_buy, _, _ = by_role[(AccountKind.WALLET, quote.buy_currency)]
    inventory_sell, _, _ = by_role[(AccountKind.FX_INVENTORY, quote.sell_currency)]
    inventory_buy, inventory_buy_balance, floor = by_role[(AccountKind.FX_INVENTORY, quote.buy_currency)]

    if wallet_sell_balance < sell_minor:
        raise WalletInsufficientFunds()
    inventory = selectors.InventoryNow(money.from_minor(inventory_buy_balance, quote.buy_currency), floor or Decimal(0))
    if inventory_buy_balance < buy_minor:
        refused.append((quote.buy_currency, inventory, quote.buy_amount))
        raise InventoryInsufficient()
    if inventory.balance - quote.buy_amount < inventory.floor:
        refused.append((quote.buy_currency, inventory, quote.buy_amount))
        raise InventoryFloorBreached()

    # 3. One entry, four legs (see the module docstring).
    try:
        posted = ledger_post(
            idempotency_key=f"fx-swap:{quote.public_id}",
            kind=EntryKind.FX_SWAP,
            legs=[
                Leg(wallet_sell, quote.sell_currency, sell_minor),  # debit: the wallet shrinks
                Leg(inventory_sell, quote.sell_currency, -sell_minor),  # credit: the inventory grows
                Leg(inventory_buy, quote.buy_currency, buy_minor),  # debit: the inventory shrinks
                Leg(wallet_buy, quote.buy_currency, -buy_minor),  # credit: the wallet grows
            ],
            memo=f"FX {quote.sell_amount} {quote.sell_currency} → {quote.buy_amount} {quote.buy_currency}",
            metadata={"quote": quote.public_id, "client_rate": str(quote.client_rate)},
        )
    except InsufficientFunds as exc:  # pragma: no cover - checked above under the same locks
        if exc.account_id == wallet_sell:
            raise WalletInsufficientFunds() from exc
        raise InventoryInsufficient() from exc

    # 4. The swap record, then commit (by the caller's transaction).
    swap = Swap(
        quote_id=quote.id,
        enterprise_id=quote.enterprise_id,
        sell_currency=quote.sell_currency,
        sell_amount=quote.sell_amount,
        buy_currency=quote.buy_currency,
        buy_amount=quote.buy_amount,
        client_rate=quote.client_rate,
        journal_entry_id=posted.entry_id,
        accepted_at=now,
    )
    if _lean_sql():
        _insert_lean(swap, _SWAP_FIELDS)
    else:
        swap.save(force_insert=True)
    # The public ids of the quote and the entry, as the swap history annotates
    # them (fx.api.views.SwapListView): the API answers from what the accept
    # knows, with no read of the swap after the commit.
    swap.quote_public_id = quote.public_id
    swap.journal_entry_public_id = posted.public_id
    return swap


# --- the accept path's statements: lean SQL on PostgreSQL, the ORM elsewhere ---------------
#
# Both paths run the same steps with the same locks; tests/fx run the accept
# tests through both (fixture ``sql_path``). The lean path exists because
# every accept holds the two platform inventory rows of its currencies from
# step 2 to the commit, so Python time there caps the swaps per second.

_QUOTE_MARK_ACCEPTED_SQL = """
UPDATE fx_quote q
   SET status = 'accepted'
 WHERE q.public_id = %s AND q.enterprise_id = %s AND q.status = 'open' AND q.expires_at > %s
RETURNING q.id, q.sell_currency, q.buy_currency, q.sell_amount, q.buy_amount, q.client_rate, q.usd_value,
          (SELECT t.single_swap_limit_usd FROM fx_enterprisefxterms t WHERE t.enterprise_id = q.enterprise_id)
"""


def _quote_mark_accepted_lean(enterprise: Enterprise, public_id: str, now: datetime) -> _Accepting:
    # One statement locks, checks and marks the quote; a concurrent accept of
    # the same quote waits for our commit here, then matches no row.
    with connection.cursor() as cursor:
        cursor.execute(_QUOTE_MARK_ACCEPTED_SQL, [public_id, enterprise.pk, now])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                "SELECT status, expires_at FROM fx_quote WHERE public_id = %s AND enterprise_id = %s",
                [public_id, enterprise.pk],
            )
            _refuse_unacceptable(cursor.fetchone())
    quote_id, sell_ccy, buy_ccy, sell_amount, buy_amount, client_rate, usd_value, limit = row
    return _Accepting(
        quote_id, public_id, enterprise.pk, sell_ccy, buy_ccy, sell_amount, buy_amount, client_rate, usd_value, limit
    )


def _refuse_unacceptable(found: tuple[str, datetime] | None) -> None:
    if found is None:
        raise QuoteNotFound()
    status, expires_at = found
    if status == QuoteStatus.ACCEPTED:
        raise QuoteAlreadyAccepted()
    raise QuoteExpired(f"The quote expired at {expires_at.isoformat()}.")


def _quote_mark_accepted_orm(enterprise: Enterprise, public_id: str, now: datetime) -> _Accepting:
    quote = (
        Quote.objects.select_for_update(of=("self",))
        .select_related("enterprise__fx_terms")
        .filter(public_id=public_id, enterprise_id=enterprise.pk)
        .first()
    )
    if quote is None or quote.status == QuoteStatus.ACCEPTED or quote.is_expired(now):
        _refuse_unacceptable(None if quote is None else (quote.status, quote.expires_at))
    Quote.objects.filter(pk=quote.pk).update(status=QuoteStatus.ACCEPTED)
    # Without a terms row the reverse one-to-one raises RelatedObjectDoesNotExist, an AttributeError.
    terms = getattr(quote.enterprise, "fx_terms", None)
    return _Accepting(
        quote.id,
        public_id,
        quote.enterprise_id,
        quote.sell_currency,
        quote.buy_currency,
        quote.sell_amount,
        quote.buy_amount,
        quote.client_rate,
        quote.usd_value,
        terms.single_swap_limit_usd if terms else None,
    )


_ACCOUNTS_LOCK_SQL = """
SELECT a.kind, a.currency, a.id, a.balance, f.floor
  FROM settlement_account a
  LEFT JOIN fx_inventoryfloor f ON f.currency = a.currency
 WHERE ((a.enterprise_id = %s AND a.kind = 'wallet') OR (a.enterprise_id IS NULL AND a.kind = 'fx_inventory'))
   AND a.currency IN (%s, %s)
 ORDER BY a.id
   FOR NO KEY UPDATE OF a
"""


def _accounts_lock_lean(quote: _Accepting) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(_ACCOUNTS_LOCK_SQL, [quote.enterprise_id, quote.sell_currency, quote.buy_currency])
        return cursor.fetchall()


def _accounts_lock_orm(quote: _Accepting) -> list[tuple]:
    return list(
        Account.objects.select_for_update(no_key=True, of=("self",))
        .filter(
            Q(enterprise_id=quote.enterprise_id, kind=AccountKind.WALLET)
            | Q(enterprise__isnull=True, kind=AccountKind.FX_INVENTORY),
            currency__in=[quote.sell_currency, quote.buy_currency],
        )
        .annotate(floor=selectors.floor_subquery())
        .order_by("id")
        .values_list("kind", "currency", "id", "balance", "floor")
    )


_QUOTE_FIELDS = (
    "public_id",
    "enterprise_id",
    "sell_currency",
    "buy_currency",
    "fixed_side",
    "mid_rate",
    "client_rate",
    "spread_bps",
    "sell_amount",
    "buy_amount",
    "fee_amount",
    "usd_value",
    "rates_published_at",
    "rate_sources",
    "status",
    "created_at",
    "expires_at",
)
_SWAP_FIELDS = (
    "public_id",
    "quote_id",
    "enterprise_id",
    "sell_currency",
    "sell_amount",
    "buy_currency",
    "buy_amount",
    "client_rate",
    "journal_entry_id",
    "accepted_at",
)


def _insert_lean(instance: Quote | Swap, fields: tuple[str, ...]) -> None:
    """INSERT one row with a fixed column list (no ORM compilation), and make ``instance`` the saved row."""
    table = instance._meta.db_table
    sql = f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({', '.join(['%s'] * len(fields))}) RETURNING id"
    with connection.cursor() as cursor:
        cursor.execute(sql, [getattr(instance, field) for field in fields])
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias


# --- inventory alerts ----------------------------------------------------------------


def inventory_alert_raise(
    *, currency: str, kind: str, balance: Decimal, floor: Decimal, detail: str = "", now: datetime | None = None
) -> InventoryAlert:
    """Raise (or count up the open) alert for ``currency`` and ``kind``: one open alert each, never a flood."""
    now = now or timezone.now()

    def save() -> InventoryAlert:
        alert = (
            InventoryAlert.objects.select_for_update()
            .filter(currency=currency, kind=kind, acknowledged_at__isnull=True)
            .first()
        )
        if alert is not None:
            InventoryAlert.objects.filter(pk=alert.pk).update(
                occurrences=F("occurrences") + 1, last_seen_at=now, balance=balance, floor=floor, detail=detail[:300]
            )
            alert.refresh_from_db()
            return alert
        return InventoryAlert.objects.create(
            currency=currency,
            kind=kind,
            balance=balance,
            floor=floor,
            detail=detail[:300],
            raised_at=now,
            last_seen_at=now,
        )

    for _ in range(3):
        try:
            with transaction.atomic():
                return save()
        except IntegrityError:
            # Another request opened the alert between our look and our insert: count up instead.
            continue
    raise AssertionError("could not raise the inventory alert")  # pragma: no cover


def inventory_alert_acknowledge(*, alert: InventoryAlert, user=None, now: datetime | None = None) -> None:
    InventoryAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=now or timezone.now(), acknowledged_by=user
    )


def inventory_floors_check(*, now: datetime | None = None) -> list[InventoryAlert]:
    """Raise a below-floor alert for every currency whose inventory is under its floor (beat task)."""
    return [
        inventory_alert_raise(
            currency=line.currency,
            kind=InventoryAlertKind.BELOW_FLOOR,
            balance=line.balance,
            floor=line.floor,
            detail=f"Inventory {line.balance} {line.currency} is below its floor {line.floor}.",
            now=now,
        )
        for line in selectors.inventory_status()
        if line.below_floor
    ]

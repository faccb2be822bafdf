"""Reserves: what backs the tokens, in the ledger and at the custodian, and their reconciliation.

Per currency:

* tokens outstanding = wallets + redemption in transit + FX inventory (the
  issuer's liabilities), plus tokens a running netting batch holds in
  clearing; the reserve in the ledger equals it (invariant 2);
* the reserve at the custodian is what the bank reports (``GET /v1/balance``).

The custodian and the ledger see two kinds of money at different moments, and
reconciliation expects exactly these and nothing else:

* a payout the bank has made (its balance is down) whose ``payout.paid`` we
  have not yet applied (our reserve is not): ``payouts_in_flight``;
* a wire the bank received that we hold in suspense (never minted):
  ``suspense_held``.

So ``custodian = ledger reserve - payouts in flight + suspense held``; any
other difference raises a ``ReserveAlert`` for the back office.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from config import money
from config.db import run_in_transaction
from settlement.deposits.models import (
    InboundWireStatus,
    ReserveAlert,
    ReserveAlertKind,
    ReserveAlertStatus,
    SuspenseItem,
    SuspenseStatus,
)
from settlement.ledger.models import Account, AccountKind
from settlement.rails import RailsError, rails_client
from settlement.redemptions.models import Redemption, RedemptionState

logger = logging.getLogger(__name__)

RATIO_PLACES = Decimal("0.0001")


def _ratio(numerator: int, denominator: int) -> Decimal | None:
    if denominator == 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATIO_PLACES, rounding=ROUND_DOWN)


@dataclass
class CurrencyReserve:
    """One currency's position, all amounts in minor units."""

    currency: str
    wallets: int = 0
    in_transit: int = 0
    fx_inventory: int = 0
    clearing: int = 0  # zero outside a running netting batch
    reserve_ledger: int = 0
    reserve_custodian: int | None = None
    payouts_in_flight: int = 0
    suspense_held: int = 0

    @property
    def tokens_outstanding(self) -> int:
        return self.wallets + self.in_transit + self.fx_inventory + self.clearing

    @property
    def expected_custodian(self) -> int:
        return self.reserve_ledger - self.payouts_in_flight + self.suspense_held

    @property
    def difference(self) -> int | None:
        """Custodian minus what the ledger explains; 0 when reconciled, None when the bank did not answer."""
        return None if self.reserve_custodian is None else self.reserve_custodian - self.expected_custodian

    @property
    def backing_ratio(self) -> Decimal | None:
        """Ledger reserve over tokens outstanding: 1.0000 is full backing."""
        return _ratio(self.reserve_ledger, self.tokens_outstanding)

    @property
    def custodian_backing_ratio(self) -> Decimal | None:
        """What the custodian holds for the tokens (suspense is not theirs; in-flight payouts are)."""
        if self.reserve_custodian is None:
            return None
        return _ratio(self.reserve_custodian - self.suspense_held + self.payouts_in_flight, self.tokens_outstanding)

    def to_json(self) -> dict:
        amounts = {
            name: money.Amount(getattr(self, name), self.currency).to_json()
            for name in (
                "tokens_outstanding",
                "wallets",
                "in_transit",
                "fx_inventory",
                "clearing",
                "reserve_ledger",
                "payouts_in_flight",
                "suspense_held",
            )
        }
        return {
            "currency": self.currency,
            **amounts,
            "reserve_custodian": None
            if self.reserve_custodian is None
            else money.Amount(self.reserve_custodian, self.currency).to_json(),
            "difference": None if self.difference is None else money.Amount(self.difference, self.currency).to_json(),
            "backing_ratio": None if self.backing_ratio is None else str(self.backing_ratio),
            "custodian_backing_ratio": None
            if self.custodian_backing_ratio is None
            else str(self.custodian_backing_ratio),
        }


@dataclass
class ReservesSnapshot:
    taken_at: datetime
    currencies: dict[str, CurrencyReserve]
    custodian_error: str | None = None

    @property
    def reconciled(self) -> bool:
        return self.custodian_error is None and all(c.difference == 0 for c in self.currencies.values())


# --- selectors ------------------------------------------------------------------------------------


_FIELD_OF_KIND = {
    AccountKind.WALLET: "wallets",
    AccountKind.REDEMPTION_IN_TRANSIT: "in_transit",
    AccountKind.FX_INVENTORY: "fx_inventory",
    AccountKind.CLEARING: "clearing",
    AccountKind.RESERVE: "reserve_ledger",
}


def tokens_and_reserve() -> dict[str, CurrencyReserve]:
    """The ledger's side, per currency, from the account balances."""
    result = {code: CurrencyReserve(code) for code in money.CURRENCY_CODES}
    rows = Account.objects.values("currency", "kind").annotate(total=Sum("balance")).order_by()
    for row in rows:
        name = _FIELD_OF_KIND.get(row["kind"])
        if name and row["currency"] in result:
            setattr(result[row["currency"]], name, int(row["total"] or 0))
    return result


def payouts_in_flight() -> dict[str, int]:
    """Redemptions the bank has paid out of its balance and we have not yet settled."""
    rows = (
        Redemption.objects.filter(state=RedemptionState.PROCESSING, payout_id__isnull=False)
        .values("currency")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    return {row["currency"]: int(row["total"]) for row in rows}


def suspense_held() -> dict[str, int]:
    rows = (
        SuspenseItem.objects.filter(status=SuspenseStatus.OPEN, wire__status=InboundWireStatus.HELD)
        .values("wire__currency")
        .annotate(total=Sum("wire__amount"))
        .order_by()
    )
    return {row["wire__currency"]: int(row["total"]) for row in rows}


def custodian_balances() -> dict[str, int]:
    """The bank's available balance per currency (minor units). Raises ``RailsError``."""
    with rails_client() as rails:
        return rails.balance_retrieve().available


def reserves_snapshot(*, with_custodian: bool = True) -> ReservesSnapshot:
    """Both sides, read as close together as we can: the bank first, then one database snapshot."""
    custodian: dict[str, int] | None = None
    error = None
    if with_custodian:
        try:
            custodian = custodian_balances()
        except RailsError as exc:
            error = str(exc)

    # One REPEATABLE READ-like view of our side: read everything in one transaction.
    def ledger_side() -> dict[str, CurrencyReserve]:
        positions = tokens_and_reserve()
        for currency, total in payouts_in_flight().items():
            positions[currency].payouts_in_flight = total
        for currency, total in suspense_held().items():
            if currency in positions:
                positions[currency].suspense_held = total
        return positions

    positions = run_in_transaction(ledger_side)
    if custodian is not None:
        for currency, position in positions.items():
            position.reserve_custodian = custodian.get(currency, 0)
    return ReservesSnapshot(taken_at=timezone.now(), currencies=positions, custodian_error=error)


# --- reconciliation ------------------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    snapshot: ReservesSnapshot
    alerts: list[ReserveAlert] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.snapshot.reconciled and not self.alerts


def reserve_alert_raise(
    *, kind: str, message: str, currency: str = "", difference: int = 0, details=None
) -> ReserveAlert:
    """Open an alert, unless the same one is already open (a repeated run adds no noise)."""

    def raise_() -> ReserveAlert:
        existing = ReserveAlert.objects.filter(
            kind=kind, currency=currency, difference=difference, message=message, status=ReserveAlertStatus.OPEN
        ).first()
        if existing:
            return existing
        logger.error("reserve alert (%s %s): %s", kind, currency, message)
        return ReserveAlert.objects.create(
            kind=kind, currency=currency, difference=difference, message=message, details=details or {}
        )

    return run_in_transaction(raise_)


def reserves_reconcile(*, confirm_after_s: float | None = None) -> ReconcileResult:
    """Compare the custodian with the ledger; alert on a difference that is still there a moment later."""
    confirm_after_s = settings.RESERVES_RECONCILE_CONFIRM_S if confirm_after_s is None else confirm_after_s
    snapshot = reserves_snapshot()
    if not snapshot.reconciled and snapshot.custodian_error is None and confirm_after_s > 0:
        time.sleep(confirm_after_s)  # money in flight between the two reads settles; a real gap stays
        snapshot = reserves_snapshot()
    result = ReconcileResult(snapshot)
    if snapshot.custodian_error is not None:
        # An unreachable bank is not a difference; the beat task runs again shortly.
        logger.warning("reconciliation skipped: %s", snapshot.custodian_error)
        return result
    for currency, position in snapshot.currencies.items():
        if position.difference:
            result.alerts.append(
                reserve_alert_raise(
                    kind=ReserveAlertKind.RECONCILIATION,
                    currency=currency,
                    difference=position.difference,
                    message=(
                        f"{currency}: the custodian holds {position.reserve_custodian}, the ledger explains "
                        f"{position.expected_custodian} (minor units); difference {position.difference}."
                    ),
                    details={key: value for key, value in asdict(position).items()},
                )
            )
    return result


# --- as of a past date (attestation) ------------------------------------------------------------------


def ledger_positions_as_of(*, until: datetime) -> dict[str, CurrencyReserve]:
    """The ledger's side at ``until`` (exclusive), from the postings: balances are not kept historically."""
    result = {code: CurrencyReserve(code) for code in money.CURRENCY_CODES}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.currency, a.kind, SUM(a.normal * p.amount) FROM settlement_posting p"
            " JOIN settlement_account a ON a.id = p.account_id"
            " JOIN settlement_journalentry e ON e.id = p.entry_id"
            " WHERE e.created_at < %s GROUP BY a.currency, a.kind",
            [until],
        )
        for currency, kind, total in cursor.fetchall():
            name = _FIELD_OF_KIND.get(kind)
            if name and currency in result:
                setattr(result[currency], name, int(total or 0))
    return result


# --- attestation ---------------------------------------------------------------------------------------


@dataclass
class Attestation:
    body: dict
    sha256: str  # of the canonical JSON of ``body``: what the sign-off covers
    signature: str  # HMAC-SHA256 of the digest with the platform's key: it was we who issued it

    def to_json(self) -> dict:
        return {**self.body, "sign_off": {**self.body["sign_off"], "sha256": self.sha256, "signature": self.signature}}


def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def attestation_digest(body: dict) -> str:
    return hashlib.sha256(_canonical(body)).hexdigest()


def reserves_attestation_build(*, on: date, signed_off_by: str) -> Attestation:
    """The reserve position at the end of ``on`` (Hong Kong), with the ledger's checks, signed off.

    The ledger side is recomputed from the journal up to the end of the day.
    The custodian's balance is the bank's live figure, so it is reported (and
    reconciled) only for today's attestation; a past date says so instead.
    """
    from settlement.ledger.selectors import ledger_verify

    hong_kong = ZoneInfo("Asia/Hong_Kong")
    until = datetime.combine(on + timedelta(days=1), datetime.min.time(), tzinfo=hong_kong)
    positions = ledger_positions_as_of(until=until)
    is_today = on == timezone.now().astimezone(hong_kong).date()
    custodian = {"source": settings.BANK_RAILS_BASE_URL, "live": is_today, "error": None}
    if is_today:
        live = reserves_snapshot()
        custodian["error"] = live.custodian_error
        custodian["reconciled"] = live.reconciled
        for currency, position in positions.items():
            current = live.currencies[currency]
            position.reserve_custodian = current.reserve_custodian
            position.payouts_in_flight = current.payouts_in_flight
            position.suspense_held = current.suspense_held
    else:
        custodian["note"] = "The custodian reports its live balance only; see the attestation made on that day."
    report = ledger_verify()
    body = {
        "title": "Harbourline reserve attestation",
        "issuer": "Harbourline",
        "date": on.isoformat(),
        "as_of": until.isoformat(),
        "generated_at": timezone.now().isoformat(),
        "basis": (
            "Tokens outstanding are wallets, redemptions in transit, FX inventory and clearing, from the "
            "double-entry journal; the reserve is the segregated fiat the journal records at the custodian. "
            "Backing ratio = ledger reserve / tokens outstanding. Amounts are exact decimal strings."
        ),
        "currencies": [position.to_json() for position in positions.values()],
        "ledger_verification": {"ok": report.ok, "breaches": report.breaches},
        # The chain's head as of this report: an auditor who keeps it can later
        # tell that no sealed entry has been rewritten since.
        "journal_seal": {
            "blocks": report.journal.blocks,
            "sealed_through_entry_id": report.journal.sealed_through_entry_id,
            "head_hash": report.journal.head_hash,
            "unsealed_entries": report.journal.unsealed_entries,
        },
        "custodian": custodian,
        "sign_off": {"signed_off_by": signed_off_by},
    }
    digest = attestation_digest(body)
    signature = hmac.new(settings.SECRET_KEY.encode(), digest.encode(), hashlib.sha256).hexdigest()
    return Attestation(body=body, sha256=digest, signature=signature)


def attestation_verify(*, document: dict) -> bool:
    """Recompute the digest of a stored attestation (JSON) and check the platform's signature."""
    sign_off = dict(document.get("sign_off") or {})
    digest, signature = sign_off.pop("sha256", None), sign_off.pop("signature", None)
    body = {**document, "sign_off": sign_off}
    expected = hmac.new(settings.SECRET_KEY.encode(), attestation_digest(body).encode(), hashlib.sha256).hexdigest()
    return digest == attestation_digest(body) and hmac.compare_digest(expected, signature or "")


def reserve_alert_resolve(*, alert: ReserveAlert, actor) -> ReserveAlert:
    """The back office has looked and settled the cause (with the bank, or by a correcting entry)."""

    def resolve() -> ReserveAlert:
        locked = ReserveAlert.objects.select_for_update().get(pk=alert.pk)
        if locked.status == ReserveAlertStatus.OPEN:
            locked.status = ReserveAlertStatus.RESOLVED
            locked.resolved_at = timezone.now()
            locked.resolved_by = actor
            locked.save(update_fields=["status", "resolved_at", "resolved_by"])
        return locked

    return run_in_transaction(resolve)

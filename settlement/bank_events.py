"""Applying the bank's events (already verified) to the platform: the one entry point the webhook view calls.

Every handler is idempotent on its own (the wire is unique on the bank's event
id; a redemption moves only out of ``processing``, or from ``paid`` to
``returned`` when a paid payout fails), so the bank's retries,
duplicates and out-of-order deliveries are all safe. An event that cannot be
applied for a business reason (a payout no redemption made, an amount that
does not match) will not apply on a retry either: it becomes a reserve alert
for the back office and is acknowledged, so that the bank stops resending it.
Anything else (the database down) propagates: the view answers 5xx and the
bank retries later.
"""

from __future__ import annotations

import logging

from settlement.deposits.models import ReserveAlertKind
from settlement.deposits.services import DepositError, inbound_wire_receive
from settlement.redemptions.services import RedemptionError, payout_failed, payout_paid
from settlement.reserves import reserve_alert_raise
from settlement.webhooks_in import BankEvent

logger = logging.getLogger(__name__)

HANDLED = "handled"
IGNORED = "ignored"
ALERTED = "alerted"


def bank_event_apply(*, event: BankEvent) -> str:
    """Apply one bank event; return what happened (handled, ignored, alerted)."""
    try:
        if event.type == "inbound_wire.received":
            inbound_wire_receive(event=event)
        elif event.type == "payout.paid":
            payout_paid(event=event)
        elif event.type in ("payout.failed", "payout.canceled"):
            payout_failed(event=event)
        else:
            return IGNORED  # payout.created / payout.updated: the terminal events carry what we act on
    except (DepositError, RedemptionError) as exc:
        reserve_alert_raise(
            kind=ReserveAlertKind.BANK_EVENT,
            currency=str(event.object.get("currency") or "").upper()[:8],
            message=f"{event.type} {event.id}: {exc.message}",
            details={"event": dict(event.raw), "code": exc.code},
        )
        return ALERTED
    return HANDLED

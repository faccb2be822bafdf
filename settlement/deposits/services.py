"""Writes on deposits: instructions, minting inbound wires, and the back office's suspense queue.

See ``settlement.deposits.models`` for the accounting model. Every mint is ONE
ledger entry (debit reserve, credit wallet) whose idempotency key is the
bank's event id; the wire row is unique on the bank's event id and wire id.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from config import money
from config.db import run_in_transaction
from config.errors import DomainError
from corporates.models import Enterprise, EnterpriseStatus
from settlement.deposits.models import (
    DepositReference,
    InboundWire,
    InboundWireStatus,
    SuspenseItem,
    SuspenseReason,
    SuspenseStatus,
)
from settlement.ledger.models import AccountKind, EntryKind
from settlement.ledger.selectors import platform_account, wallet_for
from settlement.ledger.services import ledger_post, legs_debit_credit
from settlement.webhooks_in import BankEvent

logger = logging.getLogger(__name__)

# Crockford's base32 without the letters people misread (I, L, O, U): a
# reference is typed by hand into a banking app.
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_REFERENCE_LENGTH = 10  # 50 random bits: collisions are retried, guessing is pointless


class DepositError(DomainError):
    code = "deposit_error"


class InboundWireInvalid(DepositError):
    code = "inbound_wire_invalid"
    title = "The bank's inbound-wire event is missing a field we need."
    http_status = 400


class SuspenseNotOpen(DepositError):
    code = "suspense_not_open"
    title = "The suspense item has already been resolved."


class SuspenseAssignRefused(DepositError):
    code = "suspense_assign_refused"
    title = "The wire cannot be minted to that enterprise."
    http_status = 422


# --- instructions -------------------------------------------------------------------


@dataclass(frozen=True)
class DepositInstructions:
    currency: str
    reference: str
    bank_name: str
    account_name: str
    account_number: str
    swift_code: str


def _new_reference() -> str:
    return "HL" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(_REFERENCE_LENGTH))


def deposit_reference_for(*, enterprise: Enterprise, currency: str) -> DepositReference:
    """The enterprise's reference in ``currency``, created on first use (idempotent, race-safe)."""
    currency = money.parse_currency(currency)
    existing = DepositReference.objects.filter(enterprise=enterprise, currency=currency).first()
    if existing:
        return existing
    for _ in range(5):
        try:
            with transaction.atomic():
                return DepositReference.objects.create(
                    enterprise=enterprise, currency=currency, reference=_new_reference()
                )
        except IntegrityError:
            # Either a concurrent first use for the same enterprise and currency
            # (take its row) or a random collision (draw again).
            existing = DepositReference.objects.filter(enterprise=enterprise, currency=currency).first()
            if existing:
                return existing
    raise RuntimeError("could not draw a unique deposit reference")


def deposit_instructions_for(*, enterprise: Enterprise) -> list[DepositInstructions]:
    """Where and how to wire fiat, per currency: the custodian's account and the enterprise's reference."""
    instructions = []
    for currency in money.CURRENCY_CODES:
        custodian = settings.RESERVE_CUSTODIAN_ACCOUNTS[currency]
        instructions.append(
            DepositInstructions(
                currency=currency,
                reference=deposit_reference_for(enterprise=enterprise, currency=currency).reference,
                bank_name=custodian["bank_name"],
                account_name=custodian["account_name"],
                account_number=custodian["account_number"],
                swift_code=custodian["swift_code"],
            )
        )
    return instructions


# --- inbound wires ----------------------------------------------------------------------


@dataclass(frozen=True)
class WireReceipt:
    wire: InboundWire
    created: bool  # False: the bank repeated an event we had already handled


def _wire_fields(event: BankEvent) -> dict:
    obj = event.object
    try:
        amount = int(obj["amount"])
        wire_id = str(obj["id"])
    except (KeyError, TypeError, ValueError):
        raise InboundWireInvalid(f"Event {event.id} has no wire id or integer amount.")
    if amount <= 0:
        raise InboundWireInvalid(f"Event {event.id} carries a non-positive amount.")
    created = obj.get("created")
    return {
        "bank_wire_id": wire_id,
        "amount": amount,
        "currency": str(obj.get("currency") or "").upper()[:8],
        "reference": str(obj.get("reference") or "").strip().upper()[:140],
        "sender_name": str(obj.get("sender_name") or "")[:140],
        "bank_created_at": datetime.fromtimestamp(int(created), tz=UTC) if created else None,
    }


def _mint(*, wire: InboundWire, enterprise: Enterprise) -> None:
    """The ONE entry of a mint: debit the reserve, credit the wallet, keyed by the bank's event id."""
    result = ledger_post(
        idempotency_key=f"deposit:{wire.bank_event_id}",
        kind=EntryKind.MINT,
        legs=legs_debit_credit(
            debit=platform_account(kind=AccountKind.RESERVE, currency=wire.currency),
            credit=wallet_for(enterprise=enterprise, currency=wire.currency),
            minor=wire.amount,
        ),
        memo=f"Deposit {wire.public_id} ref {wire.reference}",
        metadata={"bank_event": wire.bank_event_id, "bank_wire": wire.bank_wire_id, "deposit": wire.public_id},
    )
    wire.enterprise = enterprise
    wire.entry_id = result.entry_id
    wire.status = InboundWireStatus.MINTED
    wire.save(update_fields=["enterprise", "entry", "status"])
    _emit_received(wire)


def _emit_received(wire: InboundWire) -> None:
    from corporates.webhooks import event_emit

    event_emit(
        enterprise=wire.enterprise,
        type="deposit.received",
        data={
            "deposit": wire.public_id,
            "amount": money.Amount(wire.amount, wire.currency).to_json(),
            "reference": wire.reference,
            "sender_name": wire.sender_name,
            "bank_wire": wire.bank_wire_id,
        },
    )


def _suspense_reason(fields: dict) -> tuple[str, str, Enterprise | None] | None:
    """Why the wire must be held (reason, detail, enterprise if known), or None to mint it."""
    ref = DepositReference.objects.select_related("enterprise").filter(reference=fields["reference"]).first()
    if not fields["reference"] or ref is None:
        return SuspenseReason.UNKNOWN_REFERENCE, f"No enterprise has reference {fields['reference']!r}.", None
    if fields["currency"] != ref.currency:
        detail = f"Reference {ref.reference} is for {ref.currency}; the wire is in {fields['currency'] or '?'}."
        return SuspenseReason.CURRENCY_MISMATCH, detail, ref.enterprise
    if ref.enterprise.status != EnterpriseStatus.APPROVED:
        detail = f"{ref.enterprise.legal_name} is {ref.enterprise.get_status_display().lower()}."
        return SuspenseReason.ENTERPRISE_NOT_ACTIVE, detail, ref.enterprise
    return None


def inbound_wire_receive(*, event: BankEvent) -> WireReceipt:
    """Mint a wire 1:1 into the wallet its reference names, or hold it in suspense. Idempotent.

    The bank may deliver the same event more than once, concurrently: the
    unique event and wire ids, and the ledger's idempotency key, make the
    second delivery a no-op that returns the first one's record.
    """
    fields = _wire_fields(event)

    def receive() -> WireReceipt:
        existing = (
            InboundWire.objects.filter(bank_event_id=event.id).first()
            or InboundWire.objects.filter(bank_wire_id=fields["bank_wire_id"]).first()
        )
        if existing:
            return WireReceipt(existing, False)
        held = _suspense_reason(fields)
        if held is None:
            ref = DepositReference.objects.select_related("enterprise").get(reference=fields["reference"])
            # Frozen while we were looking? The row lock makes the check and the mint one decision.
            enterprise = Enterprise.objects.select_for_update(no_key=True).get(pk=ref.enterprise_id)
            if enterprise.status != EnterpriseStatus.APPROVED:
                held = (SuspenseReason.ENTERPRISE_NOT_ACTIVE, f"{enterprise.legal_name} is {enterprise.status}.", None)
        try:
            with transaction.atomic():  # a concurrent delivery of the same event loses here, not later
                wire = InboundWire.objects.create(
                    bank_event_id=event.id,
                    # Held until the mint entry exists (the row's CHECK wants both at once).
                    status=InboundWireStatus.HELD,
                    **fields,
                    **({"enterprise": held[2]} if held else {}),
                )
        except IntegrityError:
            existing = InboundWire.objects.filter(bank_event_id=event.id).first() or InboundWire.objects.get(
                bank_wire_id=fields["bank_wire_id"]
            )
            return WireReceipt(existing, False)
        if held:
            reason, detail, _ = held
            SuspenseItem.objects.create(wire=wire, reason=reason, detail=detail)
            logger.warning("wire %s held in suspense: %s", wire.public_id, detail)
        else:
            _mint(wire=wire, enterprise=enterprise)
        return WireReceipt(wire, True)

    return run_in_transaction(receive)


# --- the back office's suspense queue -------------------------------------------------------


def _lock_open(item: SuspenseItem) -> SuspenseItem:
    locked = SuspenseItem.objects.select_for_update().select_related("wire").get(pk=item.pk)
    if locked.status != SuspenseStatus.OPEN:
        raise SuspenseNotOpen()
    return locked


def suspense_assign(
    *, item: SuspenseItem, enterprise: Enterprise, actor: AbstractBaseUser, note: str = ""
) -> SuspenseItem:
    """The back office names the wire's owner: mint it to that enterprise (one entry, as any deposit)."""

    def assign() -> SuspenseItem:
        locked = _lock_open(item)
        wire = InboundWire.objects.select_for_update().get(pk=locked.wire_id)
        owner = Enterprise.objects.select_for_update(no_key=True).get(pk=enterprise.pk)
        if owner.status != EnterpriseStatus.APPROVED:
            raise SuspenseAssignRefused(f"{owner.legal_name} is {owner.get_status_display().lower()}.")
        if wire.currency not in money.CURRENCY_PLACES:
            raise SuspenseAssignRefused(f"The platform issues no {wire.currency} tokens; return the wire instead.")
        _mint(wire=wire, enterprise=owner)
        locked.status = SuspenseStatus.MINTED
        locked.resolved_at = timezone.now()
        locked.resolved_by = actor
        locked.resolution_note = note or f"Assigned to {owner.legal_name} ({owner.public_id}) and minted."
        locked.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
        return locked

    return run_in_transaction(assign)


def suspense_mark_returned(*, item: SuspenseItem, actor: AbstractBaseUser, note: str) -> SuspenseItem:
    """Record that the custodian sent the wire back to its sender: nothing is minted, ever."""
    if not (note or "").strip():
        raise DepositError("Say how the wire was returned (the bank's reference).")

    def mark() -> SuspenseItem:
        locked = _lock_open(item)
        InboundWire.objects.filter(pk=locked.wire_id).update(status=InboundWireStatus.RETURNED)
        locked.status = SuspenseStatus.RETURNED
        locked.resolved_at = timezone.now()
        locked.resolved_by = actor
        locked.resolution_note = note.strip()
        locked.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
        return locked

    return run_in_transaction(mark)

"""Mint from a wire: banksim as a real process, its signed events through our webhook view, PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth import get_user_model

from corporates.models import WebhookEvent
from corporates.services import enterprise_freeze
from settlement.deposits.models import (
    InboundWire,
    InboundWireStatus,
    ReserveAlert,
    ReserveAlertKind,
    SuspenseItem,
    SuspenseReason,
    SuspenseStatus,
)
from settlement.deposits.services import (
    SuspenseAssignRefused,
    SuspenseNotOpen,
    deposit_instructions_for,
    deposit_reference_for,
    suspense_assign,
    suspense_mark_returned,
)
from settlement.ledger.models import AccountKind, EntryKind, JournalEntry
from settlement.ledger.selectors import platform_account, wallet_for
from settlement.reserves import reserves_snapshot
from settlement.webhooks_in import signature_header_compute
from tests.settlement.mintredeem import *  # noqa: F403
from tests.settlement.mintredeem import assert_books_clean, minor

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def reserve(currency: str = "HKD") -> int:
    return platform_account(kind=AccountKind.RESERVE, currency=currency).balance


@pytest.fixture
def back_office(db):
    return get_user_model().objects.create_user(username="ops@harbourline.example", is_staff=True)


def test_instructions_give_one_stable_unique_reference_per_currency(make_enterprise):
    first, second = make_enterprise(), make_enterprise()

    instructions = deposit_instructions_for(enterprise=first)

    assert [i.currency for i in instructions] == ["HKD", "USD", "CNH"]
    references = {i.reference for i in instructions}
    assert len(references) == 3 and all(ref.startswith("HL") and len(ref) == 12 for ref in references)
    assert [i.reference for i in deposit_instructions_for(enterprise=first)] == [i.reference for i in instructions]
    assert references.isdisjoint(i.reference for i in deposit_instructions_for(enterprise=second))
    assert all(i.account_number and i.swift_code for i in instructions)


def test_a_wire_mints_one_to_one_in_one_entry(rails, make_enterprise):
    enterprise = make_enterprise()

    rails.fund(enterprise, "1250.75", "HKD")

    wire = InboundWire.objects.get()
    assert wire.status == InboundWireStatus.MINTED and wire.enterprise == enterprise
    assert wire_for_wallet(enterprise) == minor("1250.75") == reserve("HKD")
    entry = JournalEntry.objects.get()
    assert entry.kind == EntryKind.MINT and entry.idempotency_key == f"deposit:{wire.bank_event_id}"
    assert sorted(entry.postings.values_list("amount", flat=True)) == [-125075, 125075]
    assert WebhookEvent.objects.filter(enterprise=enterprise, type="deposit.received").count() == 1
    assert rails.custodian("HKD") == 125075
    assert_books_clean()


def wire_for_wallet(enterprise, currency: str = "HKD") -> int:
    return wallet_for(enterprise=enterprise, currency=currency).balance


def test_the_same_wire_event_delivered_again_mints_nothing_more(rails, make_enterprise):
    enterprise = make_enterprise()
    delivery = rails.fund(enterprise, "100.00")

    for _ in range(3):
        response = rails.deliver(delivery)
        assert response.status_code == 200

    assert InboundWire.objects.count() == 1 and JournalEntry.objects.count() == 1
    assert wire_for_wallet(enterprise) == minor("100.00")
    assert WebhookEvent.objects.filter(type="deposit.received").count() == 1
    assert_books_clean()


def test_the_banks_own_duplicate_deliveries_mint_once(rails, make_enterprise):
    enterprise = make_enterprise()
    rails.bank.faults(webhook_duplicate_rate=1.0)
    reference = deposit_reference_for(enterprise=enterprise, currency="USD").reference
    wire = rails.wire(amount="42.00", currency="USD", reference=reference)

    deliveries = rails.receiver.wait_for(
        lambda ds: sum(d.event["data"]["object"]["id"] == wire["id"] for d in ds) >= 2, timeout=30
    )
    for delivery in deliveries:
        assert rails.deliver(delivery).status_code == 200

    assert wire_for_wallet(enterprise, "USD") == 4200
    assert JournalEntry.objects.count() == 1
    assert_books_clean()


def test_an_unknown_reference_is_held_in_suspense_never_minted_never_lost(rails, make_enterprise, back_office):
    enterprise = make_enterprise()
    wire = rails.wire(amount="500.00", reference="HLNOSUCHREF0")

    assert rails.deliver(rails.wait_event("inbound_wire.received", wire["id"])).status_code == 200

    item = SuspenseItem.objects.get()
    assert item.reason == SuspenseReason.UNKNOWN_REFERENCE and item.status == SuspenseStatus.OPEN
    assert item.wire.amount == minor("500.00") and item.wire.status == InboundWireStatus.HELD
    assert JournalEntry.objects.count() == 0 and reserve() == 0
    snapshot = reserves_snapshot()
    assert snapshot.currencies["HKD"].suspense_held == minor("500.00")
    assert_books_clean()  # the custodian's extra 500 is explained by the suspense item

    suspense_assign(item=item, enterprise=enterprise, actor=back_office, note="Sender called: ACME's wire")

    item.refresh_from_db()
    assert item.status == SuspenseStatus.MINTED and item.resolved_by == back_office
    assert wire_for_wallet(enterprise) == minor("500.00") == reserve()
    with pytest.raises(SuspenseNotOpen):
        suspense_assign(item=item, enterprise=enterprise, actor=back_office)
    assert JournalEntry.objects.count() == 1
    assert_books_clean()


def test_a_wire_in_another_currency_than_its_reference_is_held(rails, make_enterprise):
    enterprise = make_enterprise()
    hkd_reference = deposit_reference_for(enterprise=enterprise, currency="HKD").reference
    wire = rails.wire(amount="10.00", currency="USD", reference=hkd_reference)

    rails.deliver(rails.wait_event("inbound_wire.received", wire["id"]))

    item = SuspenseItem.objects.get()
    assert item.reason == SuspenseReason.CURRENCY_MISMATCH and item.wire.enterprise == enterprise
    assert wire_for_wallet(enterprise, "USD") == 0 and wire_for_wallet(enterprise, "HKD") == 0
    assert_books_clean()


def test_a_wire_for_a_frozen_enterprise_is_held_and_can_be_marked_returned(rails, make_enterprise, back_office):
    enterprise = make_enterprise()
    reference = deposit_reference_for(enterprise=enterprise, currency="HKD").reference
    enterprise_freeze(enterprise=enterprise, reason="Compliance review")
    wire = rails.wire(amount="75.00", reference=reference)

    rails.deliver(rails.wait_event("inbound_wire.received", wire["id"]))

    item = SuspenseItem.objects.get()
    assert item.reason == SuspenseReason.ENTERPRISE_NOT_ACTIVE
    assert wire_for_wallet(enterprise) == 0
    with pytest.raises(SuspenseAssignRefused):
        suspense_assign(item=item, enterprise=enterprise, actor=back_office)
    suspense_mark_returned(item=item, actor=back_office, note="Returned by the bank, ref RT-1")
    item.refresh_from_db()
    assert item.status == SuspenseStatus.RETURNED and item.wire.status == InboundWireStatus.RETURNED
    assert JournalEntry.objects.count() == 0


@pytest.mark.parametrize("tamper", ["body", "secret", "missing", "stale", "future"])
def test_a_delivery_whose_signature_does_not_verify_is_refused_and_mints_nothing(rails, make_enterprise, tamper):
    enterprise = make_enterprise()
    reference = deposit_reference_for(enterprise=enterprise, currency="HKD").reference
    wire = rails.wire(amount="10.00", reference=reference)
    delivery = rails.wait_event("inbound_wire.received", wire["id"])
    body = delivery.body
    if tamper == "body":
        event = json.loads(body)
        event["data"]["object"]["amount"] = 99999999
        response = rails.deliver(delivery, body=json.dumps(event).encode())
    elif tamper == "secret":
        response = rails.deliver(delivery, signature=signature_header_compute(payload=body, secret="whsec_wrong"))
    elif tamper == "missing":
        response = rails.deliver(delivery, signature="")
    else:
        moment = int(time.time()) + (-3600 if tamper == "stale" else 3600)
        signature = signature_header_compute(payload=body, secret=rails.bank.webhook_secret, timestamp=moment)
        response = rails.deliver(delivery, signature=signature)

    assert response.status_code == 400
    assert response.json()["error"]["code"].startswith("webhook_")
    assert InboundWire.objects.count() == 0 and JournalEntry.objects.count() == 0
    # The genuine delivery still mints: a refused forgery costs the sender nothing.
    assert rails.deliver(delivery).status_code == 200
    assert wire_for_wallet(enterprise) == 1000
    assert_books_clean()


def test_a_wire_event_we_cannot_read_is_acknowledged_and_alerted(rails):
    body = json.dumps(
        {"id": "evt_bad_wire", "type": "inbound_wire.received", "created": 1,
         "data": {"object": {"id": "iw_bad", "amount": "lots", "currency": "hkd"}}}
    ).encode()  # fmt: skip
    signature = signature_header_compute(payload=body, secret=rails.bank.webhook_secret)

    response = rails.client.post(
        "/webhooks/bank/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )

    assert response.status_code == 200 and response.json()["outcome"] == "alerted"
    alert = ReserveAlert.objects.get()
    assert alert.kind == ReserveAlertKind.BANK_EVENT and alert.details["code"] == "inbound_wire_invalid"
    assert InboundWire.objects.count() == 0

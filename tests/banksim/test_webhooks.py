"""Events delivered by banksim to a real receiver on 127.0.0.1, verified with settlement/webhooks_in.py."""

from __future__ import annotations

import time

import pytest

from settlement.webhooks_in import WebhookSignatureMismatch, bank_event_verify

pytestmark = pytest.mark.integration


def verify(bank, delivery):
    return bank_event_verify(
        payload=delivery.body, signature_header=delivery.headers.get("Stripe-Signature"), secrets=bank.webhook_secret
    )


def types(deliveries):
    return [d.event["type"] for d in deliveries]


def test_inbound_wire_event_is_delivered_signed_as_stripe_signs(banksim_factory, webhook_receiver):
    bank = banksim_factory(webhook_url=webhook_receiver.url)
    with bank.client() as rails:
        wire = rails.test_inbound_wire(
            amount_minor=4_200_00, currency="HKD", reference="HLDEP-7Q2", sender_name="Acme", idempotency_key="w"
        )

    [delivery] = webhook_receiver.wait_for(lambda ds: len(ds) >= 1)
    event = verify(bank, delivery)

    assert delivery.headers["Content-Type"].startswith("application/json")
    assert delivery.headers["Stripe-Signature"].startswith("t=")
    assert event.id.startswith("evt_") and event.type == "inbound_wire.received"
    assert event.raw["object"] == "event" and event.created > 0
    assert dict(event.object) == dict(wire.raw)
    assert (event.object["amount"], event.object["currency"], event.object["reference"]) == (
        420_000,
        "hkd",
        "HLDEP-7Q2",
    )
    with pytest.raises(WebhookSignatureMismatch):
        bank_event_verify(
            payload=delivery.body, signature_header=delivery.headers["Stripe-Signature"], secrets="whsec_x"
        )


def test_payout_paid_and_failed_events_are_delivered(banksim_factory, webhook_receiver):
    bank = banksim_factory(webhook_url=webhook_receiver.url, opening_balances={"usd": 10_000})
    with bank.client() as rails:
        good = rails.external_account_create(
            account_number="000123456789", currency="USD", account_holder_name="A", idempotency_key="g"
        )
        closed = rails.external_account_create(
            account_number="000111111113", currency="USD", account_holder_name="B", idempotency_key="c"
        )
        paid = rails.payout_create(amount_minor=100, currency="USD", destination=good.id, idempotency_key="p1")
        failed = rails.payout_create(amount_minor=200, currency="USD", destination=closed.id, idempotency_key="p2")

    deliveries = webhook_receiver.wait_for(lambda ds: len(ds) >= 2)
    events = {verify(bank, d).type: verify(bank, d) for d in deliveries}

    # Only the enabled types are delivered (payout.created and payout.updated are recorded, not sent).
    assert sorted(events) == ["payout.failed", "payout.paid"]
    assert events["payout.paid"].object["id"] == paid.id
    assert events["payout.failed"].object["id"] == failed.id
    assert events["payout.failed"].object["failure_code"] == "account_closed"
    with bank.client() as rails:
        assert rails.event_retrieve(event_id=events["payout.paid"].id).object["status"] == "paid"


def test_delivery_is_retried_with_backoff_until_acknowledged(banksim_factory, webhook_receiver):
    webhook_receiver.answer = lambda attempt: 503 if attempt <= 3 else 204
    bank = banksim_factory(webhook_url=webhook_receiver.url)
    with bank.client() as rails:
        rails.test_inbound_wire(amount_minor=1, currency="USD", reference="R", idempotency_key="w")

    deliveries = webhook_receiver.wait_for(lambda ds: any(d.status == 204 for d in ds))
    summary = bank.http("GET", "/v1/test_helpers/webhook_deliveries").json()

    assert [d.status for d in deliveries] == [503, 503, 503, 204]
    assert len({d.event["id"] for d in deliveries}) == 1
    gaps = [later.at - earlier.at for earlier, later in zip(deliveries, deliveries[1:], strict=False)]
    assert gaps[2] > gaps[0]  # backoff grows (base 50 ms, doubling, ±20 % jitter)
    assert all(verify(bank, d).id == deliveries[0].event["id"] for d in deliveries)  # each attempt signed afresh
    assert (summary["delivered"], summary["pending"], summary["attempts"]) == (1, 0, 4)


def test_held_deliveries_go_out_when_released_and_are_retried_until_acknowledged(banksim_factory, webhook_receiver):
    webhook_receiver.answer = lambda attempt: 500 if attempt <= 1 else 200
    bank = banksim_factory(webhook_url=webhook_receiver.url, webhooks_paused=True)
    with bank.client() as rails:
        rails.test_inbound_wire(amount_minor=5, currency="CNH", reference="R", idempotency_key="w")
    assert webhook_receiver.deliveries == []  # held while paused

    bank.faults(webhooks_paused=False)

    deliveries = webhook_receiver.wait_for(lambda ds: any(d.status == 200 for d in ds))
    assert types(deliveries) == ["inbound_wire.received", "inbound_wire.received"]


def test_duplicate_mode_delivers_every_event_twice(banksim_factory, webhook_receiver):
    bank = banksim_factory(webhook_url=webhook_receiver.url, webhook_duplicate_rate=1.0)
    with bank.client() as rails:
        for n in range(3):
            rails.test_inbound_wire(amount_minor=n + 1, currency="HKD", reference=f"R{n}", idempotency_key=f"w{n}")

    deliveries = webhook_receiver.wait_for(lambda ds: len(ds) >= 6)

    time.sleep(0.3)  # a duplicate is never duplicated again
    ids = [d.event["id"] for d in webhook_receiver.deliveries]
    assert len(ids) == 6 and len(set(ids)) == 3
    assert all(ids.count(event_id) == 2 for event_id in set(ids))
    assert all(verify(bank, d) for d in deliveries)


def test_shuffle_mode_delivers_out_of_order(banksim_factory, webhook_receiver):
    bank = banksim_factory(webhook_url=webhook_receiver.url, webhook_shuffle_ms=600)
    with bank.client() as rails:
        wires = [
            rails.test_inbound_wire(amount_minor=n + 1, currency="HKD", reference=f"R{n}", idempotency_key=f"w{n}").id
            for n in range(12)
        ]

    deliveries = webhook_receiver.wait_for(lambda ds: len(ds) >= 12)

    arrived = [d.event["data"]["object"]["id"] for d in deliveries]
    assert sorted(arrived) == sorted(wires)
    assert arrived != wires  # 12 deliveries each held 0–600 ms: in creation order once in 12! runs

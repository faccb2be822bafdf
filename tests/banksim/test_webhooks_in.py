"""settlement/webhooks_in.py: Stripe-Signature verification, as a pure function."""

from __future__ import annotations

import json

import pytest

from banksim.webhooks import signature_header as banksim_signature_header
from settlement.webhooks_in import (
    WebhookPayloadInvalid,
    WebhookSignatureMalformed,
    WebhookSignatureMismatch,
    WebhookSignatureMissing,
    WebhookTimestampOutsideTolerance,
    bank_event_verify,
    signature_header_compute,
)

SECRET = "whsec_test_secret"
NOW = 1_800_000_000
EVENT = {
    "id": "evt_1",
    "object": "event",
    "type": "payout.paid",
    "created": NOW - 1,
    "data": {"object": {"id": "po_1", "object": "payout", "amount": 100, "currency": "hkd", "status": "paid"}},
}
PAYLOAD = json.dumps(EVENT).encode()


def verify(header, payload=PAYLOAD, secrets=SECRET, now=NOW, tolerance_s=300):
    return bank_event_verify(
        payload=payload, signature_header=header, secrets=secrets, tolerance_s=tolerance_s, now=now
    )


def test_a_signature_made_by_banksim_verifies_and_gives_the_event():
    event = verify(banksim_signature_header(PAYLOAD, SECRET, NOW))

    assert (event.id, event.type, event.created) == ("evt_1", "payout.paid", NOW - 1)
    assert event.object["id"] == "po_1"


def test_our_signer_and_banksims_agree_byte_for_byte():
    assert signature_header_compute(payload=PAYLOAD, secret=SECRET, timestamp=NOW) == banksim_signature_header(
        PAYLOAD, SECRET, NOW
    )


@pytest.mark.parametrize(
    ("header", "payload", "error"),
    [
        (None, PAYLOAD, WebhookSignatureMissing),
        ("", PAYLOAD, WebhookSignatureMissing),
        ("v1=abc", PAYLOAD, WebhookSignatureMalformed),
        (f"t={NOW}", PAYLOAD, WebhookSignatureMalformed),
        (f"t=yesterday,v1={'0' * 64}", PAYLOAD, WebhookSignatureMalformed),
        (f"t={NOW},v1={'0' * 64}", PAYLOAD, WebhookSignatureMismatch),
        (
            signature_header_compute(payload=PAYLOAD, secret="whsec_other", timestamp=NOW),
            PAYLOAD,
            WebhookSignatureMismatch,
        ),
        (
            signature_header_compute(payload=PAYLOAD, secret=SECRET, timestamp=NOW),
            PAYLOAD + b" ",
            WebhookSignatureMismatch,
        ),
        (
            signature_header_compute(payload=PAYLOAD, secret=SECRET, timestamp=NOW).replace("v1=", "v0="),
            PAYLOAD,
            WebhookSignatureMalformed,
        ),
    ],
    ids=[
        "none",
        "empty",
        "no-timestamp",
        "no-v1",
        "bad-timestamp",
        "zeros",
        "other-secret",
        "tampered-body",
        "v0-only",
    ],
)
def test_bad_signatures_are_refused_with_a_stable_code(header, payload, error):
    with pytest.raises(error) as caught:
        verify(header, payload=payload)

    assert caught.value.code.startswith("webhook_")
    assert caught.value.http_status == 400


def test_a_signed_timestamp_outside_the_replay_window_is_refused_both_ways():
    old = signature_header_compute(payload=PAYLOAD, secret=SECRET, timestamp=NOW - 301)
    future = signature_header_compute(payload=PAYLOAD, secret=SECRET, timestamp=NOW + 301)
    edge = signature_header_compute(payload=PAYLOAD, secret=SECRET, timestamp=NOW - 300)

    with pytest.raises(WebhookTimestampOutsideTolerance) as caught:
        verify(old)
    with pytest.raises(WebhookTimestampOutsideTolerance):
        verify(future)
    assert verify(edge).id == "evt_1"
    assert caught.value.code == "webhook_timestamp_outside_tolerance"


def test_any_v1_signature_of_any_configured_secret_is_enough_while_a_secret_is_rolled():
    old_sig = signature_header_compute(payload=PAYLOAD, secret="whsec_old", timestamp=NOW)
    new_sig = signature_header_compute(payload=PAYLOAD, secret=SECRET, timestamp=NOW).split(",")[1]
    header = f"{old_sig},{new_sig}"

    assert verify(header).id == "evt_1"
    assert verify(old_sig, secrets=["whsec_new", "whsec_old"]).id == "evt_1"


def test_a_signed_body_that_is_not_an_event_is_refused():
    for payload in (b"not json", b"[1, 2]", json.dumps({"id": "evt_1", "type": "x"}).encode()):
        header = signature_header_compute(payload=payload, secret=SECRET, timestamp=NOW)
        with pytest.raises(WebhookPayloadInvalid):
            verify(header, payload=payload)

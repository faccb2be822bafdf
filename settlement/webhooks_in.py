"""Verifying events the bank sends us: Stripe's ``Stripe-Signature`` scheme.

The header is ``t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…][,v0=…]``; the
HMAC key is the endpoint secret (``whsec_…``, BANK_RAILS_WEBHOOK_SECRET) as
UTF-8 bytes and the message is ``"<t>." + raw body``. Several ``v1`` values
may be present while a secret is being rolled; any one matching is enough.
Other schemes (``v0`` is Stripe's test scheme) are ignored.

The timestamp is signed, so a captured delivery can be replayed only within
the tolerance window (BANK_RAILS_WEBHOOK_TOLERANCE_S, Stripe's default is five
minutes); inside the window the receiving service stays safe because it acts
on each event id once. Unlike Stripe's libraries we also refuse timestamps
from too far in the future: a clock that far off is itself a fault.

This module is pure: no settings, no database. The receiving view (built
with mint and redeem) reads the raw body, calls ``bank_event_verify`` with the
configured secret(s) and tolerance, and answers 400 on ``WebhookSignatureError``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from config.errors import DomainError

SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


class WebhookSignatureError(DomainError):
    code = "webhook_signature_invalid"
    title = "The webhook's signature could not be verified."
    http_status = 400


class WebhookSignatureMissing(WebhookSignatureError):
    code = "webhook_signature_missing"
    title = "The request has no Stripe-Signature header."


class WebhookSignatureMalformed(WebhookSignatureError):
    code = "webhook_signature_malformed"
    title = "The Stripe-Signature header has no timestamp or no v1 signature."


class WebhookSignatureMismatch(WebhookSignatureError):
    code = "webhook_signature_mismatch"
    title = "No signature in the Stripe-Signature header matches the payload."


class WebhookTimestampOutsideTolerance(WebhookSignatureError):
    code = "webhook_timestamp_outside_tolerance"
    title = "The webhook's timestamp is outside the replay window."


class WebhookPayloadInvalid(WebhookSignatureError):
    code = "webhook_payload_invalid"
    title = "The webhook's body is not a bank event."


@dataclass(frozen=True)
class BankEvent:
    """A verified bank event. ``object`` is ``data.object`` (a payout, an inbound wire, …) as sent."""

    id: str
    type: str
    created: int
    object: Mapping[str, Any]
    previous_attributes: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> BankEvent:
        try:
            body = data["data"]
            if not isinstance(data["id"], str) or not isinstance(data["type"], str) or not isinstance(body, Mapping):
                raise TypeError
            obj = body["object"]
            if not isinstance(obj, Mapping):
                raise TypeError
            return cls(
                id=data["id"],
                type=data["type"],
                created=int(data["created"]),
                object=obj,
                previous_attributes=body.get("previous_attributes"),
                raw=data,
            )
        except (KeyError, TypeError, ValueError):
            raise WebhookPayloadInvalid("The event has no id, type, created or data.object.")


def signature_compute(*, payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header_compute(*, payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header the bank would send: for tests that post synthetic events to our receiver."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},{SIGNATURE_SCHEME}={signature_compute(payload=payload, secret=secret, timestamp=timestamp)}"


def _header_parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookSignatureMalformed("The Stripe-Signature timestamp is not an integer.")
        elif key == SIGNATURE_SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise WebhookSignatureMalformed("The Stripe-Signature header has no timestamp.")
    if not signatures:
        raise WebhookSignatureMalformed(f"The Stripe-Signature header has no {SIGNATURE_SCHEME} signature.")
    return timestamp, signatures


def bank_event_verify(
    *,
    payload: bytes,
    signature_header: str | None,
    secrets: str | Sequence[str],
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: int | None = None,
) -> BankEvent:
    """Check the signature over the raw body and the replay window; return the event, or raise.

    ``secrets`` may list several endpoint secrets (the current one and the one being
    rolled out); ``now`` is injectable for tests.
    """
    if not signature_header:
        raise WebhookSignatureMissing()
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    if not candidates or not all(candidates):
        raise WebhookSignatureError("No webhook secret is configured.")
    timestamp, signatures = _header_parse(signature_header)
    matched = any(
        hmac.compare_digest(signature_compute(payload=payload, secret=secret, timestamp=timestamp), signature)
        for secret in candidates
        for signature in signatures
    )
    if not matched:
        raise WebhookSignatureMismatch()
    # Checked after the signature: an unsigned timestamp tells nothing worth reporting.
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookTimestampOutsideTolerance(
            f"The signature is {current - timestamp} s old; the window is ±{tolerance_s} s.",
            timestamp=timestamp,
        )
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise WebhookPayloadInvalid("The body is not JSON.")
    if not isinstance(data, Mapping):
        raise WebhookPayloadInvalid("The body is not a JSON object.")
    return BankEvent.from_stripe(data)

"""Webhooks: the one way the platform tells an enterprise's systems that something happened.

Later capabilities call ``event_emit(enterprise=, type=, data=)`` inside the
transaction that makes the change. The event and one delivery per subscribed
endpoint are written in that transaction; the first attempt is queued on
commit, so nothing is announced that did not happen.

Each attempt POSTs the event's JSON, signed::

    Harbourline-Signature: t=<unix time>,v1=<hex HMAC-SHA256(endpoint secret, "<t>.<body>")>

After the endpoint's secret is rolled (``webhook_endpoint_secret_roll``) the
header carries a second ``v1``, made with the previous secret, until that
one expires (default 24 h): a receiver that still holds the old secret keeps
verifying while it switches, and none of the events is lost.

A 2xx answer delivers it. Anything else (another status, a timeout, a refused
connection) is logged as an attempt and retried with exponential backoff
(``webhook_retry_delay``) until ``WEBHOOK_RETRY_WINDOW`` (24 h) after the
delivery was created; the last attempt falls exactly on the window's end.
Retries are found by a periodic sweep (``webhook_deliveries_retry_due``), not
by Celery countdowns: a countdown of hours lives in a worker's memory and in
the broker's visibility timeout, a due date in the database survives both.

An attempt first *claims* its delivery (row lock, ``SKIP LOCKED``, and
``next_attempt_at`` pushed past the HTTP timeout), commits, and only then
makes the HTTP call: no transaction is held open across the network, and two
workers never send the same attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from config.db import is_postgresql, run_in_transaction
from config.errors import DomainError
from corporates.api_keys import member_require_admin
from corporates.models import (
    DeliveryStatus,
    Enterprise,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

logger = logging.getLogger("harbourline.webhooks")

SIGNATURE_HEADER = "Harbourline-Signature"
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
SUBSCRIPTION_RE = re.compile(r"^\*$|^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?$")
MAX_ENDPOINTS_PER_ENTERPRISE = 20
# How long, at most, a rolled secret's predecessor keeps signing (Stripe allows up to a week).
MAX_SECRET_OVERLAP_HOURS = 168
_EXCERPT_BYTES = 500


class WebhookUrlInvalid(DomainError):
    code = "webhook_url_invalid"
    title = "The webhook URL must be an https URL of a public host."
    http_status = 422


class WebhookEventTypesInvalid(DomainError):
    code = "webhook_event_types_invalid"
    title = 'Subscribe to at least one event type: exact ("fx.quote.accepted"), a prefix ("fx.*") or "*".'
    http_status = 422


class WebhookEndpointLimit(DomainError):
    code = "webhook_endpoint_limit"
    title = "The enterprise has registered the maximum number of webhook endpoints."
    http_status = 409


class WebhookSecretOverlapInvalid(DomainError):
    code = "webhook_secret_overlap_invalid"
    title = f"The previous secret may keep signing for 0 to {MAX_SECRET_OVERLAP_HOURS} hours."
    http_status = 422


class WebhookEndpointDeleted(DomainError):
    code = "webhook_endpoint_deleted"
    title = "The webhook endpoint has been deleted."
    http_status = 409


# --- endpoints -----------------------------------------------------------------


def _validate_url(url: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parses the port; raises on "host:notaport"
    except ValueError:
        raise WebhookUrlInvalid() from None
    allow_insecure = settings.WEBHOOK_ALLOW_INSECURE_URLS
    if parts.scheme not in ({"https", "http"} if allow_insecure else {"https"}) or not parts.hostname:
        raise WebhookUrlInvalid()
    if parts.username or parts.password or len(url) > 500:
        raise WebhookUrlInvalid("Credentials in the URL are not accepted; verify the signature instead.")
    if not allow_insecure:
        # Refuse obvious internal targets (SSRF) at once. A public name that
        # resolves to a private address is refused at each delivery instead
        # (``delivery_target``): DNS can change after the endpoint is saved.
        host = parts.hostname
        if host == "localhost" or host.endswith((".localhost", ".internal", ".local")):
            raise WebhookUrlInvalid()
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and not address.is_global:
            raise WebhookUrlInvalid()
    return url


def _validate_subscriptions(event_types: Iterable[str]) -> list[str]:
    cleaned = sorted({str(item).strip() for item in event_types})
    if not cleaned or not all(SUBSCRIPTION_RE.match(item) for item in cleaned):
        raise WebhookEventTypesInvalid()
    return cleaned


def subscription_matches(subscriptions: Iterable[str], event_type: str) -> bool:
    for pattern in subscriptions:
        if pattern in {"*", event_type}:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def webhook_endpoint_create(
    *,
    enterprise: Enterprise,
    url: str,
    event_types: Iterable[str],
    description: str = "",
    created_by: AbstractBaseUser | None,
) -> WebhookEndpoint:
    """Register an endpoint; its signing ``secret`` is on the returned object (show it to the admin)."""
    member_require_admin(enterprise=enterprise, user=created_by)
    url = _validate_url(url)
    subscriptions = _validate_subscriptions(event_types)

    def create() -> WebhookEndpoint:
        # Lock the enterprise row so that concurrent creations count correctly.
        Enterprise.objects.select_for_update().filter(pk=enterprise.pk).first()
        active = WebhookEndpoint.objects.filter(enterprise=enterprise, deleted_at__isnull=True).count()
        if active >= MAX_ENDPOINTS_PER_ENTERPRISE:
            raise WebhookEndpointLimit()
        return WebhookEndpoint.objects.create(
            enterprise=enterprise,
            url=url,
            event_types=subscriptions,
            description=description.strip()[:200],
            secret=f"whsec_{secrets.token_hex(24)}",
            created_by=created_by,
        )

    return run_in_transaction(create)


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, deleted_by: AbstractBaseUser | None) -> WebhookEndpoint:
    """Stop delivering to an endpoint; pending deliveries are cancelled, history stays."""
    member_require_admin(enterprise=endpoint.enterprise, user=deleted_by)

    def delete() -> WebhookEndpoint:
        now = timezone.now()
        WebhookEndpoint.objects.filter(pk=endpoint.pk, deleted_at__isnull=True).update(deleted_at=now)
        WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.CANCELLED, next_attempt_at=None
        )
        endpoint.refresh_from_db(fields=["deleted_at"])
        return endpoint

    return run_in_transaction(delete)


def webhook_endpoint_secret_roll(
    *,
    endpoint: WebhookEndpoint,
    rolled_by: AbstractBaseUser | None,
    overlap_hours: int = 24,
    now: datetime | None = None,
) -> WebhookEndpoint:
    """Give the endpoint a new signing secret (on the returned object: show it to the admin, once).

    The secret before it keeps signing beside the new one for ``overlap_hours``
    (0: it stops at once, for a secret that leaked). Rolled again within the
    overlap, the current secret becomes the previous one and the older one
    stops.
    """
    member_require_admin(enterprise=endpoint.enterprise, user=rolled_by)
    if type(overlap_hours) is not int or not 0 <= overlap_hours <= MAX_SECRET_OVERLAP_HOURS:
        raise WebhookSecretOverlapInvalid()

    def roll() -> WebhookEndpoint:
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if locked.deleted_at is not None:
            raise WebhookEndpointDeleted()
        moment = now or timezone.now()
        if overlap_hours:
            locked.previous_secret = locked.secret
            locked.previous_secret_expires_at = moment + timedelta(hours=overlap_hours)
        else:
            locked.previous_secret, locked.previous_secret_expires_at = "", None
        locked.secret = f"whsec_{secrets.token_hex(24)}"
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
        logger.info(
            "webhook endpoint %s: secret rolled by %s, previous signs for %s h",
            locked.public_id,
            getattr(rolled_by, "pk", None),
            overlap_hours,
        )
        return locked

    return run_in_transaction(roll)


# --- events ----------------------------------------------------------------------


def event_emit(
    *,
    enterprise: Enterprise | None = None,
    type: str,  # noqa: A002
    data: dict[str, Any],
    enterprise_id: int | None = None,
) -> WebhookEvent:
    """Record an event for ``enterprise`` and queue its delivery to every subscribed endpoint.

    ``enterprise_id`` instead of ``enterprise``: for a caller that has only the
    id at hand (a hot path need not load the row for its key alone).

    Call it inside the transaction of the change the event announces: if that
    transaction rolls back, no event exists and nothing is sent. ``data`` must
    be plain JSON (money as ``money_to_json``, never a Decimal or a float).
    """
    if not EVENT_TYPE_RE.match(type):
        raise ValueError(f"Event type {type!r} is not dotted lower-case, e.g. 'fx.quote.accepted'.")
    if not isinstance(data, dict):
        raise TypeError("Event data is a JSON object.")
    # Refuse what JSON cannot carry exactly (Decimal, datetime, float NaN) at
    # the emitter, where the mistake is, not at delivery time.
    payload = json.dumps(data, allow_nan=False)
    if (enterprise is None) == (enterprise_id is None):
        raise TypeError("Name the enterprise, or its id: one of them.")
    owner_id = enterprise.pk if enterprise is not None else enterprise_id

    def emit() -> WebhookEvent:
        if is_postgresql():
            event, subscribed = _event_insert(owner_id, type, data, payload)
        else:
            event = WebhookEvent.objects.create(enterprise_id=owner_id, type=type, data=data)
            subscribed = WebhookEndpoint.objects.filter(enterprise_id=owner_id, deleted_at__isnull=True).values_list(
                "id", "event_types"
            )
        endpoint_ids = [pk for pk, types in subscribed if subscription_matches(types, type)]
        _deliveries_create(event, endpoint_ids, is_resend=False)
        return event

    return run_in_transaction(emit)


_EVENT_INSERT_SQL = """
WITH event AS (
  INSERT INTO corporates_webhookevent (public_id, enterprise_id, type, data, created_at)
  VALUES (%s, %s, %s, %s::jsonb, %s) RETURNING id)
SELECT event.id, endpoint.id, endpoint.event_types::text
  FROM event LEFT JOIN corporates_webhookendpoint endpoint
    ON endpoint.enterprise_id = %s AND endpoint.deleted_at IS NULL
"""


def _event_insert(
    owner_id: int,
    type: str,
    data: dict[str, Any],
    payload: str,  # noqa: A002
) -> tuple[WebhookEvent, list[tuple[int, list[str]]]]:
    """Insert the event and read the owner's live endpoints in one statement (PostgreSQL).

    Every money movement announces itself, so this runs inside the hottest
    transactions (a redemption's payout.paid holds the shared in-transit
    account's lock until it commits); the ORM's INSERT and SELECT cost twice
    the round trips and most of the CPU of the whole emit.
    """
    event = WebhookEvent(
        public_id=WebhookEvent._meta.get_field("public_id").get_default(),
        enterprise_id=owner_id,
        type=type,
        data=data,
        created_at=timezone.now(),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _EVENT_INSERT_SQL,
            [
                event.public_id,
                owner_id,
                type,
                payload,
                connection.ops.adapt_datetimefield_value(event.created_at),
                owner_id,
            ],
        )
        rows = cursor.fetchall()
    event.pk = rows[0][0]
    event._state.adding = False
    return event, [(pk, json.loads(types)) for _, pk, types in rows if pk is not None]


def webhook_event_resend(*, event: WebhookEvent, endpoint: WebhookEndpoint | None = None) -> list[WebhookDelivery]:
    """Send an event again: to one endpoint, or to every active endpoint subscribed to its type.

    A re-send is a new delivery with its own attempts and its own 24 h window;
    receivers deduplicate on the event id (``id`` in the body).
    """
    if endpoint is not None:
        if endpoint.enterprise_id != event.enterprise_id:
            raise ValueError("The endpoint belongs to another enterprise.")
        if not endpoint.is_active:
            raise WebhookEndpointDeleted()
        endpoint_ids = [endpoint.pk]
    else:
        endpoint_ids = [
            candidate.pk
            for candidate in WebhookEndpoint.objects.filter(enterprise_id=event.enterprise_id, deleted_at__isnull=True)
            if subscription_matches(candidate.event_types, event.type)
        ]
    return run_in_transaction(lambda: _deliveries_create(event, endpoint_ids, is_resend=True))


def _deliveries_create(event: WebhookEvent, endpoint_ids: list[int], *, is_resend: bool) -> list[WebhookDelivery]:
    now = timezone.now()
    deliveries = [
        WebhookDelivery.objects.create(event=event, endpoint_id=pk, next_attempt_at=now, is_resend=is_resend)
        for pk in endpoint_ids
    ]
    for delivery in deliveries:
        transaction.on_commit(lambda delivery_id=delivery.id: _enqueue(delivery_id))
    return deliveries


def _enqueue(delivery_id: int) -> None:
    from corporates.tasks import webhook_deliver  # the task module imports this one

    try:
        webhook_deliver.delay(delivery_id=delivery_id)
    except Exception:
        # The change is committed and the delivery is due in the database; the
        # periodic sweep sends it even when the broker is down right now.
        logger.exception("could not queue webhook delivery %s; the retry sweep will send it", delivery_id)


# --- wire format ---------------------------------------------------------------------


def webhook_payload(event: WebhookEvent) -> bytes:
    """The body POSTed for an event: the same bytes on every attempt."""
    body = {
        "id": event.public_id,
        "type": event.type,
        "created": event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "enterprise": event.enterprise.public_id,
        "data": event.data,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, cls=DjangoJSONEncoder).encode()


def webhook_signature(*, secret: str | Iterable[str], timestamp: int, body: bytes) -> str:
    """The header's value: ``t=<timestamp>`` and one ``v1=`` per secret, in the order given."""
    secrets_ = [secret] if isinstance(secret, str) else list(secret)
    digests = [hmac.new(s.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest() for s in secrets_]
    return ",".join([f"t={timestamp}", *(f"v1={digest}" for digest in digests)])


def webhook_signature_verify(
    *, secret: str, header: str, body: bytes, tolerance_seconds: int = 300, now: float | None = None
) -> bool:
    """What a receiver does: recompute the HMAC, accept it if any ``v1`` matches, refuse stale timestamps (replays)."""
    try:
        pairs = [item.split("=", 1) for item in header.split(",") if "=" in item]
        timestamp = int(next(value for key, value in pairs if key == "t"))
    except (StopIteration, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_seconds:
        return False
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body).split("v1=", 1)[1]
    return any(key == "v1" and hmac.compare_digest(expected, value) for key, value in pairs)


# --- delivery ------------------------------------------------------------------------


def webhook_retry_delay(attempt: int) -> timedelta:
    """Wait after the ``attempt``-th failed attempt: base · 2^(attempt-1), capped."""
    base = settings.WEBHOOK_RETRY_BASE
    return min(base * 2 ** (attempt - 1), settings.WEBHOOK_RETRY_MAX_DELAY)


def webhook_retry_schedule() -> list[timedelta]:
    """Offsets from a delivery's creation at which each attempt falls (the first at zero)."""
    window = settings.WEBHOOK_RETRY_WINDOW
    offsets, offset, attempt = [timedelta(0)], timedelta(0), 1
    while offset < window:
        offset = min(offset + webhook_retry_delay(attempt), window)
        offsets.append(offset)
        attempt += 1
    return offsets


def _claim(delivery_id: int, now: datetime) -> WebhookDelivery | None:
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event__enterprise", "endpoint")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None:
            return None  # delivered, given up, not yet due, or another worker holds it
        if not delivery.endpoint.is_active:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.CANCELLED, None
            delivery.save(update_fields=["status", "next_attempt_at"])
            return None
        delivery.attempt_count += 1
        # The claim: nobody else picks it up until the HTTP call has had time
        # to finish; if this worker dies, the delivery becomes due again.
        delivery.next_attempt_at = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 3)
        delivery.save(update_fields=["attempt_count", "next_attempt_at"])
        return delivery


class UnsafeWebhookTarget(Exception):
    """The endpoint's host resolves to an address that is not public (SSRF): nothing is sent."""


def delivery_target(url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(URL to connect to, extra headers, httpx extensions) for one delivery to ``url``.

    In production the host is resolved once, here; every address it resolves
    to must be public, and the request then goes to that checked address with
    the original name as Host header and TLS server name (SNI and certificate
    check). Resolving again inside httpx would let a name that answered with a
    public address for the check answer with an internal one for the
    connection (DNS rebinding). With WEBHOOK_ALLOW_INSECURE_URLS (development
    and tests, receivers on 127.0.0.1) the URL is used as it is.
    """
    if settings.WEBHOOK_ALLOW_INSECURE_URLS:
        return url, {}, {}
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeWebhookTarget(f"{host} does not resolve: {exc}") from None
    addresses = sorted({ipaddress.ip_address(info[4][0]) for info in infos}, key=lambda a: (a.version, int(a)))
    if not addresses or not all(address.is_global for address in addresses):
        raise UnsafeWebhookTarget(f"{host} resolves to a non-public address; not sent")
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = f"{host}:{parts.port}" if parts.port else host
    return pinned, {"Host": host_header}, {"sni_hostname": host}


def _post(delivery: WebhookDelivery) -> tuple[int | None, str, str, int]:
    """(status code, error, response excerpt, latency ms) of one HTTP POST.

    Never raises: whatever goes wrong is a failed attempt, recorded and
    retried. (An exception here would leave the delivery claimed and
    re-claimed forever, with no attempt logged.)
    """
    started = time.monotonic()
    try:
        body = webhook_payload(delivery.event)
        timestamp = int(time.time())
        url, pinned_headers, extensions = delivery_target(delivery.endpoint.url)
        headers = {
            **pinned_headers,
            "Content-Type": "application/json",
            "User-Agent": "Harbourline-Webhooks/1",
            SIGNATURE_HEADER: webhook_signature(
                secret=delivery.endpoint.signing_secrets(timezone.now()), timestamp=timestamp, body=body
            ),
            "Harbourline-Event-Id": delivery.event.public_id,
            "Harbourline-Delivery-Id": delivery.public_id,
        }
        with (
            httpx.Client(timeout=settings.WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response,
        ):
            # Keep only the start of the answer: a receiver must not be able
            # to make us read (or store) a large body.
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= _EXCERPT_BYTES:
                    break
    except (httpx.HTTPError, UnsafeWebhookTarget) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500], "", _since(started)
    except Exception as exc:
        logger.exception("webhook delivery %s failed before an HTTP answer", delivery.public_id)
        return None, f"{type(exc).__name__}: {exc}"[:500], "", _since(started)
    error = "" if response.is_success else f"HTTP {response.status_code}"
    return response.status_code, error, excerpt[:_EXCERPT_BYTES].decode("utf-8", "replace"), _since(started)


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def webhook_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> WebhookDelivery | None:
    """Make one attempt of a due delivery and record it; None when it was not due or not ours.

    Safe to call twice at once, and again after a crash: the claim decides.
    """
    now = now or timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    status_code, error, excerpt, latency = _post(delivery)
    succeeded = status_code is not None and 200 <= status_code < 300

    def record() -> WebhookDelivery:
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempt_count,
            attempted_at=now,
            status_code=status_code,
            latency_ms=latency,
            error=error,
            response_excerpt=excerpt,
            succeeded=succeeded,
        )
        delivery.last_status_code = status_code
        if succeeded:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, now, None
        else:
            deadline = delivery.created_at + settings.WEBHOOK_RETRY_WINDOW
            if now >= deadline:
                delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
            else:
                delivery.next_attempt_at = min(now + webhook_retry_delay(delivery.attempt_count), deadline)
        delivery.save(update_fields=["last_status_code", "status", "delivered_at", "next_attempt_at"])
        return delivery

    result = run_in_transaction(record)
    log = logger.info if succeeded else logger.warning
    log(
        "webhook %s attempt %s to %s: %s in %sms",
        delivery.public_id, delivery.attempt_count, delivery.endpoint.url, status_code or error, latency,
    )  # fmt: skip
    return result


def webhook_deliveries_due(*, now: datetime | None = None, limit: int = 50) -> list[int]:
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )


def webhook_deliveries_retry_due(*, now: datetime | None = None, limit: int = 50) -> int:
    """Attempt due deliveries (the periodic sweep); returns how many were attempted.

    Stops taking new ones after ``WEBHOOK_SWEEP_BUDGET_SECONDS`` so that a run
    of slow receivers cannot push the task past its time limit; the next
    sweep (and other workers' sweeps, which skip what this one holds) go on.
    """
    budget_ends = time.monotonic() + settings.WEBHOOK_SWEEP_BUDGET_SECONDS
    attempted = 0
    for delivery_id in webhook_deliveries_due(now=now, limit=limit):
        if time.monotonic() > budget_ends:
            break
        if webhook_delivery_attempt(delivery_id=delivery_id, now=now) is not None:
            attempted += 1
    return attempted

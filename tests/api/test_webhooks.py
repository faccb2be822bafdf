"""Webhooks against a real HTTP receiver on 127.0.0.1: signing, retries with backoff, re-send."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from corporates.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from corporates.webhooks import (
    SIGNATURE_HEADER,
    UnsafeWebhookTarget,
    WebhookEndpointDeleted,
    delivery_target,
    event_emit,
    subscription_matches,
    webhook_deliveries_retry_due,
    webhook_delivery_attempt,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_event_resend,
    webhook_retry_delay,
    webhook_retry_schedule,
    webhook_signature,
    webhook_signature_verify,
)

pytestmark = pytest.mark.django_db


class Receiver:
    """A threaded HTTP server that records each POST and answers from a script of status codes."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"receiver is down")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def emit(django_capture_on_commit_callbacks, settings):
    """event_emit inside a transaction, running its on-commit delivery with an eager Celery task."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    app.conf.task_always_eager = True

    def do_emit(enterprise, type_, data):
        with django_capture_on_commit_callbacks(execute=True):
            return event_emit(enterprise=enterprise, type=type_, data=data)

    yield do_emit
    app.conf.task_always_eager = False


def _endpoint(enterprise, url, types=("*",)) -> WebhookEndpoint:
    return webhook_endpoint_create(enterprise=enterprise, url=url, event_types=list(types), created_by=None)


def test_event_is_delivered_signed_and_logged(enterprise, receiver, emit):
    endpoint = _endpoint(enterprise, receiver.url, ["payment.*"])

    event = emit(enterprise, "payment.settled", {"amount": {"amount": "10.00", "currency": "HKD"}})

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    body = json.loads(request["body"])
    assert body["id"] == event.public_id and event.public_id.startswith("evt_")
    assert body["type"] == "payment.settled"
    assert body["data"] == {"amount": {"amount": "10.00", "currency": "HKD"}}
    assert body["enterprise"] == enterprise.public_id and body["created"].endswith("Z")
    header = request["headers"][SIGNATURE_HEADER]
    assert webhook_signature_verify(secret=endpoint.secret, header=header, body=request["body"])
    assert not webhook_signature_verify(secret="whsec_wrong", header=header, body=request["body"])
    assert not webhook_signature_verify(secret=endpoint.secret, header=header, body=request["body"] + b" ")

    delivery = WebhookDelivery.objects.get(event=event)
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.delivered_at is not None
    attempt = delivery.attempts.get()
    assert (attempt.number, attempt.status_code, attempt.succeeded) == (1, 200, True)
    assert attempt.latency_ms >= 0


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    body = b'{"id":"evt_1"}'
    expected = hmac.new(b"whsec_x", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhook_signature(secret="whsec_x", timestamp=1700000000, body=body) == f"t=1700000000,v1={expected}"
    # A stale timestamp is refused even with the right HMAC (replay protection).
    header = webhook_signature(secret="whsec_x", timestamp=1700000000, body=body)
    assert webhook_signature_verify(secret="whsec_x", header=header, body=body, now=1700000100)
    assert not webhook_signature_verify(secret="whsec_x", header=header, body=body, now=1700000400)
    assert not webhook_signature_verify(secret="whsec_x", header="garbage", body=body)


def test_unsubscribed_endpoints_get_nothing(enterprise, receiver, emit):
    _endpoint(enterprise, receiver.url, ["fx.quote.accepted"])
    event = emit(enterprise, "payment.settled", {})
    assert receiver.requests == [] and not event.deliveries.exists()


def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(enterprise, emit):
    with Receiver(statuses=[500, 503]) as flaky:
        _endpoint(enterprise, flaky.url)
        event = emit(enterprise, "payment.settled", {"n": 1})
        delivery = WebhookDelivery.objects.get(event=event)

        # First attempt (on commit) failed: due again after the base delay.
        assert delivery.status == DeliveryStatus.PENDING and delivery.attempt_count == 1
        first_due = delivery.next_attempt_at - delivery.attempts.get(number=1).attempted_at
        assert first_due == webhook_retry_delay(1) == timedelta(seconds=30)

        # Not due yet: the sweep leaves it alone.
        assert webhook_deliveries_retry_due(now=timezone.now()) == 0
        # Due: second attempt fails (503), the wait doubles.
        later = delivery.next_attempt_at
        assert webhook_deliveries_retry_due(now=later) == 1
        delivery.refresh_from_db()
        assert delivery.attempt_count == 2 and delivery.next_attempt_at - later == timedelta(seconds=60)
        # Third attempt: the receiver has recovered.
        assert webhook_deliveries_retry_due(now=delivery.next_attempt_at) == 1

        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.SUCCEEDED
        assert [(a.number, a.status_code, a.succeeded) for a in delivery.attempts.all()] == [
            (1, 500, False),
            (2, 503, False),
            (3, 200, True),
        ]
        assert delivery.attempts.get(number=1).error == "HTTP 500"
        # Every attempt carried the same body and event id.
        assert len({request["body"] for request in flaky.requests}) == 1


def test_an_unreachable_receiver_is_logged_as_an_error(enterprise, emit):
    with Receiver() as gone:
        url = gone.url
    _endpoint(enterprise, url)  # the server is closed: connection refused
    event = emit(enterprise, "payment.settled", {})
    attempt = WebhookDelivery.objects.get(event=event).attempts.get()
    assert attempt.status_code is None and "ConnectError" in attempt.error


def test_backoff_schedule_is_exponential_and_ends_at_24_hours(settings):
    schedule = webhook_retry_schedule()
    gaps = [later - earlier for earlier, later in zip(schedule, schedule[1:], strict=False)]
    assert gaps[:5] == [timedelta(seconds=30 * 2**n) for n in range(5)]
    assert all(b >= a for a, b in zip(gaps, gaps[1:-1], strict=False))  # non-decreasing, but the last (clipped)
    assert max(gaps) <= settings.WEBHOOK_RETRY_MAX_DELAY
    assert schedule[-1] == timedelta(hours=24) and schedule[-2] < timedelta(hours=24)


def test_delivery_gives_up_after_the_window(enterprise, emit, settings):
    with Receiver(statuses=[500] * 50) as down:
        _endpoint(enterprise, down.url)
        event = emit(enterprise, "payment.settled", {})
        delivery = WebhookDelivery.objects.get(event=event)
        deadline = delivery.created_at + settings.WEBHOOK_RETRY_WINDOW
        # Walk the schedule: every attempt falls at a due time, the last exactly at the deadline.
        while delivery.status == DeliveryStatus.PENDING:
            assert delivery.next_attempt_at <= deadline
            webhook_delivery_attempt(delivery_id=delivery.id, now=delivery.next_attempt_at)
            delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.FAILED
        assert delivery.attempt_count == len(webhook_retry_schedule())
        assert delivery.attempts.order_by("-number").first().attempted_at == deadline


def test_two_workers_never_send_the_same_attempt(enterprise, settings):
    with Receiver(delay=0.3) as slow:
        _endpoint(enterprise, slow.url)
        event = event_emit(enterprise=enterprise, type="payment.settled", data={})  # on_commit not run here
        delivery = WebhookDelivery.objects.get(event=event)
        now = timezone.now()
        webhook_delivery_attempt(delivery_id=delivery.id, now=now)
        # The claim moved the due time past the HTTP timeout: a second worker finds nothing due.
        assert webhook_delivery_attempt(delivery_id=delivery.id, now=now) is None
        assert len(slow.requests) == 1


def test_deleting_an_endpoint_cancels_its_pending_deliveries(enterprise, receiver):
    endpoint = _endpoint(enterprise, receiver.url)
    event = event_emit(enterprise=enterprise, type="payment.settled", data={})
    webhook_endpoint_delete(endpoint=endpoint, deleted_by=None)
    assert WebhookDelivery.objects.get(event=event).status == DeliveryStatus.CANCELLED
    assert webhook_deliveries_retry_due() == 0
    with pytest.raises(WebhookEndpointDeleted):
        webhook_event_resend(event=event, endpoint=endpoint)


def test_resend_creates_a_new_delivery_with_the_same_event(
    enterprise, receiver, emit, django_capture_on_commit_callbacks
):
    _endpoint(enterprise, receiver.url)
    event = emit(enterprise, "payment.settled", {"n": 2})
    with django_capture_on_commit_callbacks(execute=True):
        deliveries = webhook_event_resend(event=event)
    assert len(deliveries) == 1 and deliveries[0].is_resend
    assert len(receiver.requests) == 2
    assert json.loads(receiver.requests[0]["body"])["id"] == json.loads(receiver.requests[1]["body"])["id"]


def test_event_data_must_be_plain_json(enterprise):
    from decimal import Decimal

    with pytest.raises(TypeError):
        event_emit(enterprise=enterprise, type="payment.settled", data={"amount": Decimal("1.00")})
    with pytest.raises(ValueError):
        event_emit(enterprise=enterprise, type="Payment Settled", data={})
    assert not WebhookEvent.objects.exists()


def test_an_event_rolled_back_with_its_change_is_never_sent(enterprise, receiver, django_capture_on_commit_callbacks):
    from django.db import transaction

    _endpoint(enterprise, receiver.url)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            event_emit(enterprise=enterprise, type="payment.settled", data={})
            raise RuntimeError("the business change failed")
    assert callbacks == [] and receiver.requests == []
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    ("subscriptions", "event_type", "matches"),
    [
        (["*"], "fx.quote.accepted", True),
        (["fx.*"], "fx.quote.accepted", True),
        (["fx.quote.*"], "fx.quote.accepted", True),
        (["fx.quote.accepted"], "fx.quote.accepted", True),
        (["fx.*"], "fxx.quote", False),
        (["payment.settled"], "payment.settled.late", False),
    ],
)
def test_subscription_matching(subscriptions, event_type, matches):
    assert subscription_matches(subscriptions, event_type) is matches


@pytest.mark.parametrize(
    "url",
    [
        "http://erp.example.com/h",
        "https://127.0.0.1/h",
        "http://[::1",
        "https://erp.example.com:port/h",
        "https://localhost/h",
        "https://10.0.0.8/h",
        "https://user:pw@erp.example.com/h",
        "ftp://erp.example.com/h",
        "https:///nohost",
    ],
)
def test_production_refuses_insecure_or_internal_urls(enterprise, settings, url):
    settings.WEBHOOK_ALLOW_INSECURE_URLS = False
    with pytest.raises(Exception) as refused:
        webhook_endpoint_create(enterprise=enterprise, url=url, event_types=["*"], created_by=None)
    assert refused.value.code == "webhook_url_invalid"


def test_api_manages_endpoints_and_resends_events(enterprise, client_a, receiver, django_capture_on_commit_callbacks):
    created = client_a.post(
        "/api/v1/webhook-endpoints", {"url": receiver.url, "event_types": ["payment.*"]}, format="json",
        HTTP_IDEMPOTENCY_KEY="we-1",
    )  # fmt: skip
    assert created.status_code == 201
    endpoint = created.json()
    assert endpoint["id"].startswith("we_") and endpoint["secret"].startswith("whsec_")
    listed = client_a.get("/api/v1/webhook-endpoints").json()["results"]
    assert [row["id"] for row in listed] == [endpoint["id"]] and "secret" not in listed[0]

    event = event_emit(enterprise=enterprise, type="payment.settled", data={"x": 1})
    detail = client_a.get(f"/api/v1/events/{event.public_id}").json()
    assert detail["type"] == "payment.settled" and len(detail["deliveries"]) == 1
    assert client_a.get("/api/v1/events", {"type": "payment.settled"}).json()["results"][0]["id"] == event.public_id
    assert client_a.get("/api/v1/events", {"type": "other.type"}).json()["results"] == []

    with django_capture_on_commit_callbacks(execute=False):
        resent = client_a.post(
            f"/api/v1/events/{event.public_id}/resend", {}, format="json", HTTP_IDEMPOTENCY_KEY="r-1"
        )
    assert resent.status_code == 202 and resent.json()["deliveries"][0]["endpoint"] == endpoint["id"]

    deleted = client_a.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}")
    assert deleted.status_code == 204
    assert client_a.get(f"/api/v1/webhook-endpoints/{endpoint['id']}").status_code == 404
    assert client_a.get("/api/v1/webhook-endpoints").json()["results"] == []


def test_a_receiver_cannot_make_us_read_a_large_answer(enterprise, emit):
    with Receiver() as receiver:
        handler = receiver.server.RequestHandlerClass

        def do_post(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"x" * 65536)  # 12.5 MiB if we read it all
            except (BrokenPipeError, ConnectionResetError):
                pass

        handler.do_POST = do_post
        _endpoint(enterprise, receiver.url)
        event = emit(enterprise, "payment.settled", {})

    attempt = WebhookDelivery.objects.get(event=event).attempts.get()
    assert attempt.succeeded and attempt.response_excerpt == "x" * 500


def test_an_unexpected_failure_is_a_logged_attempt_not_a_stuck_delivery(enterprise, settings, emit):
    endpoint = _endpoint(enterprise, "https://erp.example.com/hooks")
    # A stored URL httpx cannot even parse (as if the validator had been looser once).
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="http://[::1")
    event = emit(enterprise, "payment.settled", {})
    delivery = WebhookDelivery.objects.get(event=event)
    attempt = delivery.attempts.get()
    assert not attempt.succeeded and attempt.error
    assert delivery.next_attempt_at is not None and delivery.status == DeliveryStatus.PENDING


# --- SSRF: the address is checked at each delivery and the connection pinned to it ---------------


def _resolving(monkeypatch, answers: dict[str, list[str]]) -> None:
    """Make the system resolver answer ``answers`` for these names (the test machine has no public DNS)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [
                (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_public_name_that_resolves_inside_is_never_sent_to(enterprise, receiver, emit, settings, monkeypatch):
    port = receiver.url.split(":")[2].split("/")[0]
    endpoint = _endpoint(enterprise, f"http://erp.example.com:{port}/hooks")  # accepted while insecure URLs are
    settings.WEBHOOK_ALLOW_INSECURE_URLS = False
    _resolving(monkeypatch, {"erp.example.com": ["127.0.0.1"]})  # DNS now points at us (rebinding)

    event = emit(enterprise, "payment.settled", {})

    attempt = WebhookDelivery.objects.get(event=event, endpoint=endpoint).attempts.get()
    assert attempt.status_code is None and "non-public address" in attempt.error
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["93.184.216.34"], ("https://93.184.216.34/h?x=1", "erp.example.com")),
        (["2606:2800:220:1::1"], ("https://[2606:2800:220:1::1]/h?x=1", "erp.example.com")),
    ],
)
def test_delivery_goes_to_the_checked_address_under_the_original_name(settings, monkeypatch, answers, expected):
    settings.WEBHOOK_ALLOW_INSECURE_URLS = False
    _resolving(monkeypatch, {"erp.example.com": answers})

    url, headers, extensions = delivery_target("https://erp.example.com/h?x=1")

    assert (url, headers["Host"]) == expected
    assert extensions == {"sni_hostname": "erp.example.com"}


def test_a_port_is_kept_in_the_url_and_the_host_header(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_INSECURE_URLS = False
    _resolving(monkeypatch, {"erp.example.com": ["93.184.216.34"]})

    url, headers, _ = delivery_target("https://erp.example.com:8443/h")

    assert url == "https://93.184.216.34:8443/h" and headers["Host"] == "erp.example.com:8443"


@pytest.mark.parametrize("answers", [["93.184.216.34", "10.1.2.3"], ["169.254.169.254"], ["::1"], []])
def test_any_internal_answer_refuses_the_delivery(settings, monkeypatch, answers):
    settings.WEBHOOK_ALLOW_INSECURE_URLS = False
    _resolving(monkeypatch, {"erp.example.com": answers})

    with pytest.raises(UnsafeWebhookTarget):
        delivery_target("https://erp.example.com/h")


def test_an_event_may_name_its_enterprise_by_id_but_names_exactly_one(enterprise):
    event = event_emit(enterprise_id=enterprise.pk, type="redemption.paid", data={"redemption": "red_1"})

    assert WebhookEvent.objects.get(pk=event.pk).enterprise_id == enterprise.pk
    with pytest.raises(TypeError):
        event_emit(enterprise=enterprise, enterprise_id=enterprise.pk, type="redemption.paid", data={})
    with pytest.raises(TypeError):
        event_emit(type="redemption.paid", data={})
    assert WebhookEvent.objects.count() == 1

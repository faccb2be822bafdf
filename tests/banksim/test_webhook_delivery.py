"""banksim's sender, ``deliver_once``, against a real HTTP/1.1 receiver: keep-alive, a closed connection, redirects."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from banksim.webhooks import deliver_once
from settlement.webhooks_in import bank_event_verify

SECRET = "whsec_delivery"
EVENT = b'{"id": "evt_1", "object": "event", "type": "payout.paid", "created": 1, "data": {"object": {}}}'


class KeepAliveReceiver:
    """Answers as HTTP/1.1 with keep-alive; records (client port, path, signature, body) per request."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, str, str, bytes]] = []
        self.status = 200
        self.close_after_answer = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(
                    (self.client_address[1], self.path, self.headers.get("Stripe-Signature", ""), body)
                )
                self.send_response(receiver.status)
                if receiver.status in (301, 302, 307):
                    self.send_header("Location", "/elsewhere/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                if receiver.close_after_answer:
                    self.close_connection = True  # without saying so: the sender finds out on its next request

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/bank/?source=banksim"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[KeepAliveReceiver]:
    server = KeepAliveReceiver()
    yield server
    server.stop()


def send(receiver: KeepAliveReceiver) -> tuple[bool, int | None, str | None]:
    return deliver_once(receiver.url, EVENT, SECRET, timeout_s=5)


def test_deliveries_from_one_thread_share_one_kept_alive_connection_and_are_signed(receiver):
    assert send(receiver) == (True, 200, None)
    assert send(receiver) == (True, 200, None)

    (port_1, path, signature, body), (port_2, *_) = receiver.requests
    assert port_1 == port_2  # one TCP connection for both
    assert path == "/webhooks/bank/?source=banksim"
    assert body == EVENT
    assert bank_event_verify(payload=body, signature_header=signature, secrets=[SECRET]).id == "evt_1"


def test_a_connection_the_receiver_closed_is_replaced_and_the_event_still_arrives(receiver):
    receiver.close_after_answer = True
    assert send(receiver) == (True, 200, None)
    assert send(receiver) == (True, 200, None)

    assert len(receiver.requests) == 2
    assert receiver.requests[0][0] != receiver.requests[1][0]  # a new connection for the second


def test_a_redirect_is_a_failed_delivery_and_is_not_followed(receiver):
    receiver.status = 302

    assert send(receiver) == (False, 302, "HTTP 302")
    assert [path for _, path, _, _ in receiver.requests] == ["/webhooks/bank/?source=banksim"]


def test_an_unreachable_receiver_is_a_failed_delivery():
    ok, status, error = deliver_once("http://127.0.0.1:9/webhooks/bank/", EVENT, SECRET, timeout_s=2)

    assert (ok, status) == (False, None)
    assert "ConnectionRefusedError" in error

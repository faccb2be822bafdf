"""Webhook delivery, signed the way Stripe signs: ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256>``.

The HMAC key is the endpoint secret (``whsec_…``) as UTF-8 bytes; the message
is ``"<t>.<raw JSON body>"``. Each attempt is signed afresh with the time of
sending, as Stripe does. A delivery counts as acknowledged only on a 2xx
(redirects are failures); otherwise it is retried with exponential backoff and
jitter until it is. Deliveries are at least once and not ordered: the store's
duplicate and shuffle faults make both visible.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from banksim.store import Bank

log = logging.getLogger("banksim.webhooks")


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# Each delivery thread keeps one connection to the receiver open between
# deliveries (HTTP/1.1 keep-alive), as Stripe's senders do: a new TCP
# connection per event costs both ends more than the event itself.
_local = threading.local()


def _connection(url: str, timeout_s: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    key = (parts.scheme, parts.netloc, timeout_s)
    conn = getattr(_local, "conn", None)
    if conn is not None and _local.key == key:
        return conn
    if conn is not None:
        conn.close()
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout_s)
    elif parts.scheme == "http":
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    else:
        raise ValueError(f"unsupported webhook URL scheme {parts.scheme!r}")
    _local.conn, _local.key = conn, key
    return conn


def deliver_once(url: str, payload: bytes, secret: str, timeout_s: float) -> tuple[bool, int | None, str | None]:
    """POST one signed event; a 2xx acknowledges it. Redirects are not followed (Stripe does not either)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks) banksim",
        "Stripe-Signature": signature_header(payload, secret, int(time.time())),
    }
    for attempt in (1, 2):
        reused = False
        try:
            conn = _connection(url, timeout_s)
            reused = conn.sock is not None
            conn.request("POST", target, body=payload, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, reset, timed out, bad URL
            if getattr(_local, "conn", None) is not None:
                _local.conn.close()
            if attempt == 1 and reused and isinstance(exc, (ConnectionError, http.client.RemoteDisconnected)):
                continue  # the receiver closed the idle kept-alive connection: once more, on a new one
            return False, None, f"{type(exc).__name__}: {exc}"
        if response.will_close:
            conn.close()
        ok = 200 <= response.status < 300
        return ok, response.status, None if ok else f"HTTP {response.status}"
    return False, None, "unreachable"  # pragma: no cover - the loop always returns


class Dispatcher(threading.Thread):
    def __init__(self, bank: Bank) -> None:
        super().__init__(name="banksim-webhooks", daemon=True)
        self.bank = bank
        self.stopping = threading.Event()
        workers = max(1, bank.config.webhook_workers)
        self.slots = threading.BoundedSemaphore(workers)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="banksim-delivery")

    def stop(self) -> None:
        self.stopping.set()
        self.bank.deliveries_ready.set()

    def run(self) -> None:
        bank = self.bank
        while not self.stopping.is_set():
            bank.deliveries_ready.clear()
            wait_s = 0.5
            if not bank.config.faults.webhooks_paused and bank.config.webhook_url:
                free = self._free_slots()
                if free:
                    claimed, next_due = bank.deliveries_claim(free)
                    for delivery_id, body, _attempts in claimed:
                        self.slots.acquire()
                        self.pool.submit(self._send, delivery_id, body.encode())
                    if next_due is not None:
                        wait_s = min(wait_s, max(0.0, next_due - time.time()))
                else:
                    wait_s = 0.01
            bank.deliveries_ready.wait(timeout=max(wait_s, 0.002))
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _free_slots(self) -> int:
        # BoundedSemaphore has no public counter; probe without blocking.
        free = 0
        while self.slots.acquire(blocking=False):
            free += 1
        for _ in range(free):
            self.slots.release()
        return free

    def _send(self, delivery_id: int, payload: bytes) -> None:
        config = self.bank.config
        try:
            ok, status, error = deliver_once(
                config.webhook_url, payload, config.webhook_secret, config.webhook_timeout_s
            )
            if not ok:
                log.info("delivery %s failed: %s", delivery_id, error)
            self.bank.delivery_record(delivery_id, ok=ok, status=status, error=error)
        except Exception:  # a delivery thread must never die silently with the row in flight
            log.exception("delivery %s crashed", delivery_id)
            self.bank.delivery_record(delivery_id, ok=False, status=None, error="crashed")
        finally:
            self.slots.release()


class Lifecycle(threading.Thread):
    """Moves payouts pending -> in_transit -> paid | failed when their time comes."""

    def __init__(self, bank: Bank) -> None:
        super().__init__(name="banksim-lifecycle", daemon=True)
        self.bank = bank
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()
        self.bank.jobs_ready.set()

    def run(self) -> None:
        bank = self.bank
        while not self.stopping.is_set():
            bank.jobs_ready.clear()
            try:
                next_due = bank.payouts_advance()
            except Exception:
                log.exception("payout lifecycle step failed")
                next_due = time.time() + 1
            wait_s = 0.5 if next_due is None else min(0.5, max(0.0, next_due - time.time()))
            bank.jobs_ready.wait(timeout=max(wait_s, 0.002))

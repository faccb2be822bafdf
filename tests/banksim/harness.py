"""banksim as a real process for tests, and a real webhook receiver on 127.0.0.1.

Importable by any test that needs the bank rails (mint, redeem, reserves):

    from tests.banksim.harness import banksim_start, WebhookReceiver

The fixtures in tests/banksim/conftest.py wrap these; another area's conftest
can re-export them (``from tests.banksim.conftest import banksim, banksim_factory``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from settlement.rails import RailsClient

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SECRET_KEY = "sk_test_suite_banksim_key"
WEBHOOK_SECRET = "whsec_suite_banksim_secret"
ACCOUNT_ID = "acct_suite"

# Fast by default: a payout is paid ~70 ms after it is created; a failed delivery is retried after ~50 ms.
FAST_OPTIONS: dict[str, Any] = {
    "transit_delay_ms": 20,
    "settle_delay_ms": 50,
    "webhook_retry_base_ms": 50,
    "webhook_retry_max_ms": 400,
    "webhook_timeout_s": 2,
}


@dataclass
class Banksim:
    url: str
    secret_key: str
    webhook_secret: str
    account_id: str
    db_path: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def client(self, **overrides: Any) -> RailsClient:
        options: dict[str, Any] = {
            "base_url": self.url,
            "secret_key": self.secret_key,
            "account_id": self.account_id,
            "timeout_s": 5,
            "connect_timeout_s": 2,
            "max_retries": 2,
            "retry_backoff_s": 0.01,
        }
        options.update(overrides)
        return RailsClient(**options)

    def http(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
        """A raw request, for tests of the wire format itself."""
        headers = kwargs.pop("headers", {})
        if key is None:
            key = self.secret_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def faults(self, **faults: Any) -> dict[str, Any]:
        form = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in faults.items()}
        response = self.http("POST", "/v1/test_helpers/faults", data=form)
        response.raise_for_status()
        return response.json()

    def payouts_count(self) -> int:
        """Payouts as the bank counts them (every page)."""
        with self.client() as rails:
            return sum(1 for _ in rails.payouts_iter())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdout:
            self.process.stdout.close()


def banksim_start(directory: Path, *, db_path: Path | None = None, **options: Any) -> Banksim:
    """Start ``python -m banksim.server`` on a free port; return once it answers."""
    options = {**FAST_OPTIONS, **options}
    options.setdefault("secret_key", SECRET_KEY)
    options.setdefault("webhook_secret", WEBHOOK_SECRET)
    options.setdefault("account_id", ACCOUNT_ID)
    options.setdefault("webhook_url", "")
    db_path = db_path or directory / "banksim.sqlite3"
    log_path = directory / f"banksim-{time.time_ns()}.log"
    argv = [sys.executable, "-m", "banksim.server", "--port", "0", "--db", str(db_path)]
    for name, value in options.items():
        if isinstance(value, bool):
            if value:
                argv.append("--" + name.replace("_", "-"))
            continue
        text = ",".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        argv += ["--" + name.replace("_", "-"), text]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKSIM_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=log)
    url = _read_url(process, log_path)
    bank = Banksim(
        url=url,
        secret_key=options["secret_key"],
        webhook_secret=options["webhook_secret"],
        account_id=options["account_id"],
        db_path=db_path,
        log_path=log_path,
        process=process,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return bank
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            bank.stop()
            raise RuntimeError(f"banksim did not answer at {url}; see {log_path}")
        time.sleep(0.02)


def _read_url(process: subprocess.Popen, log_path: Path) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 10)
    line = process.stdout.readline().decode() if ready else ""
    if "listening on " not in line:
        process.kill()
        raise RuntimeError(f"banksim did not start: {line!r}; see {log_path}: {log_path.read_text()[-2000:]}")
    return line.split("listening on ", 1)[1].split()[0]


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]
    status: int
    at: float

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class WebhookReceiver:
    """A real HTTP endpoint on 127.0.0.1 that records every delivery and answers as told."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.answer: Callable[[int], int] = lambda attempt: 200  # attempt number (1-based) -> HTTP status
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._cond:
                    status = receiver.answer(len(receiver.deliveries) + 1)
                    receiver.deliveries.append(Delivery(body, dict(self.headers.items()), status, time.monotonic()))
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/bank/"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def acknowledged(self) -> list[Delivery]:
        with self._cond:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def wait_for(self, predicate: Callable[[list[Delivery]], bool], timeout: float = 10) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.deliveries):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    types = [d.event.get("type") for d in self.deliveries]
                    raise AssertionError(f"condition not met in {timeout} s; deliveries so far: {types}")
                self._cond.wait(remaining)
            return list(self.deliveries)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

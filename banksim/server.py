"""banksim's HTTP server: ``python -m banksim.server [--port P] [--db PATH] [--webhook-url URL] …``.

Every option has a ``BANKSIM_*`` environment-variable equivalent (banksim/config.py).
With no arguments it listens on 127.0.0.1:8010, keeps its state in
var/banksim/banksim.sqlite3 and delivers webhooks to the platform at
http://127.0.0.1:8000/webhooks/bank/ — what ``make run`` needs.

The API follows Stripe's for what it implements:

    GET  /v1/balance                                   the reserve per currency
    GET  /v1/balance_transactions[/{txn}]
    POST /v1/payouts              GET /v1/payouts[/{po}]      POST /v1/payouts/{po}/cancel
    POST /v1/accounts/{acct}/external_accounts        GET  …/external_accounts[/{ba}]
    GET  /v1/events[/{evt}]
    GET  /v1/inbound_wires[/{iw}]
    POST /v1/test_helpers/inbound_wires                 credit a wire for a reference
    POST /v1/test_helpers/payouts/{po}/return           a paid payout comes back: failed, balance credited
    GET|POST /v1/test_helpers/faults                    read or change fault injection
    GET  /v1/test_helpers/webhook_deliveries            delivery counters
    GET  /                                              liveness (no key needed)

Faults (latency, 500s, timeouts) apply to the API, never to the test-helper
endpoints that read or change them. A "timed out" request is carried out and
its answer held back past the client's timeout: the hard case for a client,
which must retry with the same Idempotency-Key and get the same object back.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import random
import re
import signal
import sys
import threading
import time
from dataclasses import asdict, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from banksim.config import Config, Faults, config_load
from banksim.store import API_VERSION, FAILURE_MESSAGES, Bank
from banksim.webhooks import Dispatcher, Lifecycle
from banksim.wire import StripeError, form_decode, new_id, params_allow

log = logging.getLogger("banksim")
MAX_BODY_BYTES = 1_000_000

# (method, path pattern, handler name, faults apply)
_ROUTES: list[tuple[str, re.Pattern[str], str, bool]] = [
    (method, re.compile(f"^{pattern}$"), name, faults)
    for method, pattern, name, faults in [
        ("GET", r"/", "health", False),
        ("GET", r"/v1/balance", "balance", True),
        ("GET", r"/v1/balance_transactions", "balance_transactions_list", True),
        ("GET", r"/v1/balance_transactions/(?P<id>[\w-]+)", "balance_transaction_retrieve", True),
        ("POST", r"/v1/payouts", "payout_create", True),
        ("GET", r"/v1/payouts", "payouts_list", True),
        ("GET", r"/v1/payouts/(?P<id>[\w-]+)", "payout_retrieve", True),
        ("POST", r"/v1/payouts/(?P<id>[\w-]+)/cancel", "payout_cancel", True),
        ("GET", r"/v1/account", "account_retrieve", True),
        ("POST", r"/v1/accounts/(?P<account>[\w-]+)/external_accounts", "bank_account_create", True),
        ("GET", r"/v1/accounts/(?P<account>[\w-]+)/external_accounts", "bank_accounts_list", True),
        ("GET", r"/v1/accounts/(?P<account>[\w-]+)/external_accounts/(?P<id>[\w-]+)", "bank_account_retrieve", True),
        ("GET", r"/v1/events", "events_list", True),
        ("GET", r"/v1/events/(?P<id>[\w-]+)", "event_retrieve", True),
        ("GET", r"/v1/inbound_wires", "inbound_wires_list", True),
        ("GET", r"/v1/inbound_wires/(?P<id>[\w-]+)", "inbound_wire_retrieve", True),
        ("POST", r"/v1/test_helpers/inbound_wires", "inbound_wire_create", True),
        ("POST", r"/v1/test_helpers/payouts/(?P<id>[\w-]+)/return", "payout_return", True),
        ("GET", r"/v1/test_helpers/faults", "faults_retrieve", False),
        ("POST", r"/v1/test_helpers/faults", "faults_update", False),
        ("GET", r"/v1/test_helpers/webhook_deliveries", "deliveries_summary", False),
    ]
]


class App:
    """The API: routes a request to the bank, with Stripe's auth, idempotency and faults around it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.bank = Bank(config)
        self.initial_faults = Faults(**asdict(config.faults))

    # Each returns (status, body). ``params`` is the decoded form body (POST) or query (GET).

    def health(self, params: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        return {"object": "banksim", "status": "ok", "account": self.config.account_id}

    def balance(self, params, request):
        params_allow(params, set())
        return self.bank.balance()

    def balance_transactions_list(self, params, request):
        return self.bank.balance_transactions_list(params)

    def balance_transaction_retrieve(self, params, request, id):  # noqa: A002 - the path's name
        return self.bank.balance_transaction_retrieve(id)

    def payout_create(self, params, request):
        return self.bank.payout_create(params, request)

    def payouts_list(self, params, request):
        return self.bank.payouts_list(params)

    def payout_retrieve(self, params, request, id):  # noqa: A002
        return self.bank.payout_retrieve(id)

    def payout_cancel(self, params, request, id):  # noqa: A002
        params_allow(params, set())
        return self.bank.payout_cancel(id, request)

    def account_retrieve(self, params, request):
        return {
            "id": self.config.account_id,
            "object": "account",
            "country": "HK",
            "default_currency": self.config.currencies[0],
            "payouts_enabled": True,
            "type": "custom",
        }

    def bank_account_create(self, params, request, account):
        return self.bank.bank_account_create(account, params)

    def bank_accounts_list(self, params, request, account):
        return self.bank.bank_accounts_list(account, params)

    def bank_account_retrieve(self, params, request, account, id):  # noqa: A002
        return self.bank.bank_account_retrieve(account, id)

    def events_list(self, params, request):
        return self.bank.events_list(params)

    def event_retrieve(self, params, request, id):  # noqa: A002
        return self.bank.event_retrieve(id)

    def inbound_wires_list(self, params, request):
        return self.bank.inbound_wires_list(params)

    def inbound_wire_retrieve(self, params, request, id):  # noqa: A002
        return self.bank.inbound_wire_retrieve(id)

    def inbound_wire_create(self, params, request):
        return self.bank.inbound_wire_create(params, request)

    def payout_return(self, params, request, id):  # noqa: A002
        return self.bank.payout_return(id, params, request)

    def faults_retrieve(self, params, request):
        return {"object": "test_helpers.faults", **asdict(self.config.faults)}

    def faults_update(self, params, request):
        names = {f.name: f.type for f in fields(Faults)}
        params_allow(params, {*names, "reset"})
        if params.get("reset") in {"true", "1"}:
            self.config.faults = Faults(**asdict(self.initial_faults))
        faults = self.config.faults
        for name, raw in params.items():
            if name == "reset":
                continue
            kind = names[name]
            try:
                if kind in {"int", int}:
                    value: Any = int(raw)
                    if value < 0:
                        raise ValueError
                elif kind in {"float", float}:
                    value = float(raw)  # a share of requests, 0 to 1 (fault injection), never money
                    if not 0.0 <= value <= 1.0:
                        raise ValueError
                elif kind in {"bool", bool}:
                    value = raw in {"true", "1"}
                else:
                    value = raw
                    if value and name == "fail_payouts" and value not in FAILURE_MESSAGES:
                        raise ValueError
            except (TypeError, ValueError):
                raise StripeError(400, f"Invalid value for {name}: {raw!r}", code="parameter_invalid", param=name)
            setattr(faults, name, value)
        self.bank.deliveries_ready.set()  # a resumed or re-timed dispatcher looks again at once
        self.bank.jobs_ready.set()
        return self.faults_retrieve({}, request)

    def deliveries_summary(self, params, request):
        with self.bank.lock:
            return self.bank.deliveries_summary()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the platform's client reuses its connections
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stalls
    server_version = "banksim/1.0"
    app: App  # set on the subclass that serve() builds

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        if self.app.config.verbose:
            log.info("%s %s", self.address_string(), format % args)

    def _handle(self, method: str) -> None:
        app = self.app
        request_id = new_id("req")
        headers: dict[str, str] = {"Request-Id": request_id}
        split = urlsplit(self.path)
        held_back_s = 0.0
        try:
            raw_body = self._body()
            route = self._route(method, split.path)
            name, path_args, faults_apply = route
            if name != "health":
                self._authenticate()
            faults = app.config.faults
            if faults_apply:
                if faults.latency_ms:
                    time.sleep(faults.latency_ms / 1000)
                if faults.error_rate and random.random() < faults.error_rate:
                    raise StripeError(
                        500,
                        "An unknown error occurred while processing your request. (banksim fault injection)",
                        type_="api_error",
                        should_retry=True,
                    )
                if faults.timeout_rate and random.random() < faults.timeout_rate:
                    held_back_s = faults.timeout_ms / 1000
            params = form_decode(raw_body if method == "POST" else split.query)
            idempotency_key = self.headers.get("Idempotency-Key") if method == "POST" else None
            request = {"id": request_id, "idempotency_key": idempotency_key}
            handler = getattr(app, name)
            if idempotency_key is not None:
                headers["Idempotency-Key"] = idempotency_key
                status, body, replayed = self._idempotent(
                    idempotency_key, method, split.path, params, lambda: handler(params, request, **path_args)
                )
                if replayed:
                    headers["Idempotent-Replayed"] = "true"
            else:
                with app.bank.lock:
                    status, body = 200, handler(params, request, **path_args)
        except StripeError as exc:
            status, body = exc.status, exc.body()
            if exc.should_retry is not None:
                headers["Stripe-Should-Retry"] = "true" if exc.should_retry else "false"
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="Stripe"'
        except Exception:
            log.exception("internal error on %s %s", method, split.path)
            status = 500
            body = StripeError(
                500, "An unknown error occurred while processing your request.", type_="api_error"
            ).body()
        if held_back_s:
            time.sleep(held_back_s)  # done, but the answer comes too late for the client
        self._respond(status, body, headers)

    def _body(self) -> str:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True  # the body was not read: the connection cannot be reused
            raise StripeError(400, f"The request body must be at most {MAX_BODY_BYTES} bytes, with a Content-Length.")
        return self.rfile.read(length).decode("utf-8", "replace") if length else ""

    def _route(self, method: str, path: str) -> tuple[str, dict[str, str], bool]:
        path_known = False
        for route_method, pattern, name, faults_apply in _ROUTES:
            match = pattern.match(path)
            if match:
                path_known = True
                if route_method == method:
                    return name, match.groupdict(), faults_apply
        if path_known:
            raise StripeError(405, f"Unrecognized request URL ({method}: {path}).")
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")

    def _authenticate(self) -> None:
        header = self.headers.get("Authorization") or ""
        scheme, _, credentials = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":  # Stripe also takes the key as the Basic-auth user name
            try:
                key = base64.b64decode(credentials).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if not hmac.compare_digest(key.encode(), self.app.config.secret_key.encode()):
            raise StripeError(401, f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}")

    def _idempotent(self, key: str, method: str, path: str, params: dict[str, Any], run) -> tuple[int, Any, bool]:
        """Stripe's rule: same key and parameters -> the saved answer; other parameters -> idempotency_error.

        Only answers of requests that were carried out are saved (2xx): a request refused by
        validation saves nothing, so that it can be corrected and sent again with the same key.
        The check, the work and the saving happen under one lock and in one SQLite
        transaction, so two requests racing with one key cannot both do the work.
        """
        if len(key) > 255:
            raise StripeError(400, "Idempotency-Key must be at most 255 characters.", param="Idempotency-Key")
        bank = self.app.bank
        with bank.transaction():
            saved = bank.idempotency_lookup(key)
            if saved is not None:
                if saved["method"] != method or saved["path"] != path:
                    raise StripeError(
                        400,
                        f"Keys for idempotent requests can only be used for the same endpoint they were first used "
                        f"for ('{saved['method']} {saved['path']}' vs '{method} {path}'). Try using a key other "
                        f"than '{key}' if you meant to execute a different request.",
                        type_="idempotency_error",
                    )
                if saved["params"] != bank.params_fingerprint(params):
                    raise StripeError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                        type_="idempotency_error",
                    )
                return saved["status"], json.loads(saved["body"]), True
            body = run()
            bank.idempotency_save(key=key, method=method, path=path, params=params, status=200, body=body)
        return 200, body, False

    def _respond(self, status: int, body: Any, headers: dict[str, str]) -> None:
        payload = json.dumps(body, indent=2).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-cache, no-store")
            self.send_header("Stripe-Version", API_VERSION)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (timeout fault): nothing to do


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the benchmark opens many connections at once


def serve(config: Config) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = App(config)
    handler = type("BoundHandler", (Handler,), {"app": app})
    server = Server((config.host, config.port), handler)
    host, port = server.server_address[:2]
    lifecycle, dispatcher = Lifecycle(app.bank), Dispatcher(app.bank)
    lifecycle.start()
    dispatcher.start()

    def stop(*_: object) -> None:
        # shutdown() waits for serve_forever() to return, so it must run on another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The first line on stdout says where banksim listens (tests start it on port 0 and read it).
    print(f"banksim listening on http://{host}:{port} (db {config.db})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        lifecycle.stop()
        dispatcher.stop()
        server.server_close()
        with app.bank.lock:
            app.bank.db.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return serve(config_load(argv))


if __name__ == "__main__":
    sys.exit(main())

"""FX throughput through the real API (issue 5): quotes, and quote+accept pairs, per second. Not a test.

    make bench-fx        # DATABASE_URL=postgres://…/harbourline_fx_bench python bench/fx.py

Starts gunicorn (sync workers, the real app on PostgreSQL, settings from the
environment) on a fresh database with one funded enterprise and API key per
client, then drives it from CLIENTS concurrent client processes on the same
machine (closed loop: each sends its next request when the previous one
answered):

* quotes — POST /api/v1/fx/quotes (USD → HKD, fixed sell amount) for
  --seconds; throughput and p50/p99 latency;
* pairs  — POST /api/v1/fx/quotes, then POST /api/v1/fx/quotes/{id}/accept,
  for --seconds; pairs per second and the pair's p50/p99. Every accept locks
  the same two fx_inventory rows (USD and HKD): the platform's hot spot;
* rates  — GET /api/v1/fx/rates: the same stack (auth, throttle, DRF) with no
  write and no commit, as the ceiling this machine gives any request now.

Before the server starts, the CPU per call in-process (fx services alone, and
the whole Django request through the test client) shows where the time goes.

Every POST carries a fresh Idempotency-Key, as a real ERP client's would.
A non-2xx answer counts as an error and is reported. The last lines are the
BENCH figures (bench/common.py), also written to bench/results/fx.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Figures, database_url, percentile, recreate_database, setup_django  # noqa: E402

CLIENTS = 8
WORKERS = 4
HOST = "127.0.0.1"
PAIR = ("USD", "HKD")
QUOTE_BODY = json.dumps(
    {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": "125.00", "currency": "USD"}}
).encode()

TARGETS = {"quote_p99_ms": 15.0, "quotes_per_s": 1000.0, "quote_accept_per_s": 300.0}

# What gunicorn runs with, on top of the caller's environment.
SERVER_ENV = {
    "HARBOURLINE_EMBEDDED": "0",
    "DEBUG": "0",
    "LOG_LEVEL": "WARNING",
    "DB_CONN_MAX_AGE": "600",
    "API_KEY_RATE_LIMIT": "100000000/min",
    # Rates are published once at set-up; the benchmark is not about the feed.
    "FX_RATES_STALE_AFTER_SECONDS": "86400",
    "FX_QUOTE_TTL_SECONDS": "300",
    "FX_DEFAULT_SINGLE_SWAP_LIMIT_USD": "100000000.00",
}


def prepare(clients: int) -> list[str]:
    """A fresh database: platform accounts, FX inventory, rates, one funded enterprise and key per client."""
    from decimal import Decimal

    from django.db import transaction

    from config import money
    from corporates.api_keys import api_key_create
    from corporates.models import ApiScope, Enterprise, EnterpriseStatus
    from fx.services import manual_rate_set
    from settlement.ledger.models import AccountKind, EntryKind
    from settlement.ledger.selectors import platform_account, wallet_for
    from settlement.ledger.services import ledger_post, legs_debit_credit, platform_accounts_open, wallets_open

    recreate_database(database_url())

    def mint(account, amount: str) -> None:
        ledger_post(
            idempotency_key=f"bench:mint:{account.id}",
            kind=EntryKind.MINT,
            legs=legs_debit_credit(
                debit=platform_account(kind=AccountKind.RESERVE, currency=account.currency),
                credit=account,
                minor=money.to_minor(Decimal(amount), account.currency),
            ),
        )

    keys = []
    with transaction.atomic():
        platform_accounts_open()
        for code in money.CURRENCY_CODES:
            mint(platform_account(kind=AccountKind.FX_INVENTORY, currency=code), "100000000000.00")
        for i in range(clients):
            enterprise = Enterprise.objects.create(
                legal_name=f"FX Bench {i:02d} Ltd",
                registration_number=f"FXB-{i:04d}",
                jurisdiction="HK",
                status=EnterpriseStatus.APPROVED,
            )
            wallets_open(enterprise=enterprise)
            mint(wallet_for(enterprise=enterprise, currency=PAIR[0]), "10000000000.00")
            keys.append(
                api_key_create(
                    enterprise=enterprise, name="bench", scopes=list(ApiScope.values), created_by=None
                ).secret
            )
    manual_rate_set(currency="HKD", mid=Decimal("7.8123"), note="bench")
    manual_rate_set(currency="CNH", mid=Decimal("7.1042"), note="bench")
    return keys


# --- the server ---------------------------------------------------------------------------


def start_server(port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, **SERVER_ENV}
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    process = subprocess.Popen(  # noqa: S603 - our own gunicorn, fixed arguments
        [
            gunicorn,
            "config.wsgi:application",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"{HOST}:{port}",
            "--log-level",
            "warning",
            "--backlog",
            "512",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    return process


def wait_ready(port: int, key: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = request(port, "GET", "/api/v1/fx/rates", key, None)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit("gunicorn did not answer in time")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


# --- the clients ------------------------------------------------------------------------------


def request(port: int, method: str, path: str, key: str, body: bytes | None) -> tuple[int, bytes]:
    # One connection per request: gunicorn's sync workers close after each answer.
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    if method == "POST":
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = uuid.uuid4().hex
    try:
        conn.request(
            method, path, body=body if body is not None else (b"{}" if method == "POST" else None), headers=headers
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _client(port: int, key: str, mode: str, start_at: float, stop_at: float, out: mp.Queue) -> None:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    done = 0
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < stop_at:
        begun = time.perf_counter()
        if mode == "rates":  # the stack's own ceiling: an authenticated read, no write, no commit
            status, body = request(port, "GET", "/api/v1/fx/rates", key, None)
            status = 201 if status == 200 else status
        else:
            status, body = request(port, "POST", "/api/v1/fx/quotes", key, QUOTE_BODY)
        if status == 201 and mode == "pairs":
            quote_id = json.loads(body)["id"]
            status, body = request(port, "POST", f"/api/v1/fx/quotes/{quote_id}/accept", key, None)
        elapsed = time.perf_counter() - begun
        if status == 201:
            latencies.append(elapsed)
            done += 1
        else:
            code = json.loads(body).get("code", str(status)) if body.startswith(b"{") else str(status)
            errors[code] = errors.get(code, 0) + 1
    out.put((latencies, errors, done))


def drive(port: int, keys: list[str], mode: str, seconds: float) -> dict:
    out: mp.Queue = mp.Queue()
    start_at = time.time() + 1.0
    stop_at = start_at + seconds
    processes = [mp.Process(target=_client, args=(port, key, mode, start_at, stop_at, out)) for key in keys]
    for p in processes:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in processes]
    for p in processes:
        p.join()
    latencies = [lat for r in results for lat in r[0]]
    errors: dict[str, int] = {}
    for r in results:
        for code, n in r[1].items():
            errors[code] = errors.get(code, 0) + n
    done = sum(r[2] for r in results)
    return {
        "per_s": done / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "count": done,
        "errors": errors,
    }


def cpu_per_call(keys: list[str], count: int = 300) -> dict[str, float]:
    """CPU milliseconds per call in this process (no server, no network): where a request's time goes.

    ``quote_service`` / ``accept_service`` are fx.services alone; ``quote_request`` and
    ``accept_request`` are the whole Django request (middleware, API-key auth, throttle,
    idempotency record, serializers) through the test client.
    """
    import uuid as _uuid
    from decimal import Decimal

    from django.test import Client

    from corporates.models import ApiKey
    from fx import services

    enterprise = ApiKey.objects.select_related("enterprise").get(prefix=keys[0].split("_")[1]).enterprise

    def per_call(fn, n: int) -> float:
        started = time.process_time()
        for i in range(n):
            fn(i)
        return (time.process_time() - started) / n * 1000

    quotes = [None] * count

    def make_quote(i: int) -> None:
        quotes[i] = services.quote_create(
            enterprise=enterprise, sell_currency="USD", buy_currency="HKD", sell_amount=Decimal("125.00")
        )

    figures = {"quote_service": per_call(make_quote, count)}
    figures["accept_service"] = per_call(
        lambda i: services.quote_accept(enterprise=enterprise, public_id=quotes[i].public_id), count
    )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {keys[0]}")
    ids = [None] * count

    def post(path: str, body: bytes):
        return client.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=_uuid.uuid4().hex)

    def request_quote(i: int) -> None:
        ids[i] = post("/api/v1/fx/quotes", QUOTE_BODY).json()["id"]

    figures["quote_request"] = per_call(request_quote, count)
    figures["accept_request"] = per_call(lambda i: post(f"/api/v1/fx/quotes/{ids[i]}/accept", b"{}"), count)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("FX_BENCH_SECONDS", "20")))
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("FX_BENCH_WORKERS", WORKERS)))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FX_BENCH_PORT", "8765")))
    args = parser.parse_args()

    url = database_url()
    setup_django()
    keys = prepare(args.clients)
    from django.conf import settings
    from django.db import connections

    for name, value in SERVER_ENV.items():  # the same settings as the server, for the in-process phase
        if name.startswith(("FX_", "API_KEY_")):
            setattr(settings, name, int(value) if value.isdigit() else value)
    cpu = cpu_per_call(keys)
    print("CPU per call in-process (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
    connections.close_all()

    server = start_server(args.port, args.workers)
    try:
        wait_ready(args.port, keys[0])
        drive(args.port, keys, "quotes", min(3.0, args.seconds))  # warm-up: connections, caches, plans
        quotes = drive(args.port, keys, "quotes", args.seconds)
        print(f"quotes: {quotes['count']} in {args.seconds:.0f} s, errors {quotes['errors']}")
        pairs = drive(args.port, keys, "pairs", args.seconds)
        print(f"quote+accept pairs: {pairs['count']} in {args.seconds:.0f} s, errors {pairs['errors']}")
        reads = drive(args.port, keys, "rates", min(10.0, args.seconds))
        print(f"GET /fx/rates (same stack, no write): {reads['per_s']:.0f}/s, p50 {reads['p50_ms']:.1f} ms")
    finally:
        stop_server(server)

    figures = Figures("fx")
    for name, value in cpu.items():
        figures.add(f"fx.{name}_cpu_ms", value, "ms")
    figures.add("fx.rates_get_per_s", reads["per_s"], "requests/s")
    figures.add("fx.rates_get_p50_ms", reads["p50_ms"], "ms")
    figures.add("fx.quote_accept_p50_ms", pairs["p50_ms"], "ms")
    figures.add("fx.quote_accept_p99_ms", pairs["p99_ms"], "ms")
    figures.add("fx.quote_p99_ms", quotes["p99_ms"], "ms", target=TARGETS["quote_p99_ms"])
    figures.add("fx.quote_p50_ms", quotes["p50_ms"], "ms")
    figures.add("fx.quotes_per_s", quotes["per_s"], "quotes/s", target=TARGETS["quotes_per_s"])
    figures.add("fx.quote_accept_per_s", pairs["per_s"], "pairs/s", target=TARGETS["quote_accept_per_s"])
    figures.finish(
        url,
        notes={
            "server": f"gunicorn, {args.workers} sync workers, the real app (config.wsgi) on PostgreSQL",
            "clients": f"{args.clients} closed-loop client processes on the same machine, one connection per request",
            "pair": f"{PAIR[0]} → {PAIR[1]}, fixed sell 125.00; every accept locks the same two fx_inventory rows",
            "seconds_per_phase": args.seconds,
            "errors": {"quotes": quotes["errors"], "pairs": pairs["errors"]},
            "throttle_cache": os.environ.get("API_THROTTLE_CACHE_URL") or os.environ.get("CELERY_BROKER_URL", ""),
        },
    )


if __name__ == "__main__":
    main()

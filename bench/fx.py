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

The clients share the two cores with the server, so each is as cheap as a
real HTTP/1.1 client can be: a raw socket per request (gunicorn's sync
workers close the connection after each answer) carrying the headers an ERP
client sends (Authorization, Accept, Content-Type, a fresh Idempotency-Key on
every POST), reading each answer to its Content-Length and checking its status
and JSON body (the quote's amounts, the swap's quote and amounts). An answer
that is not as expected counts as an error and is reported.

Each phase also prints where the CPU went, per operation: the client
processes (their own CPU time), the gunicorn processes, the bench database's
PostgreSQL backends, other PostgreSQL processes and what is left of the whole
machine's busy time, from /proc. The last lines are the BENCH figures
(bench/common.py), also written to bench/results/fx.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Figures, database_url, percentile, recreate_database, setup_django  # noqa: E402

CLIENTS = 8
WORKERS = 4
HOST = "127.0.0.1"
PAIR = ("USD", "HKD")
QUOTE_SELL = {"amount": "125.00", "currency": "USD"}
QUOTE_BODY = json.dumps({"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": QUOTE_SELL}).encode()

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
            status, _ = request(port, "GET", "/api/v1/fx/rates", key)
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
#
# The load generator shares the two cores with the server, so it is as cheap
# as a real HTTP/1.1 client can be: a raw socket per request (gunicorn's sync
# workers close the connection after each answer), the request's bytes built
# once per client with only the Idempotency-Key (a fresh one per POST) and the
# quote id filled in, and each answer read to its end, its status checked and
# its JSON body parsed and checked (the quote's amounts, the swap's quote).


class BadAnswer(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def request_bytes(method: str, path: str, key: str, port: int, body: bytes = b"", idempotency_key: str = "") -> bytes:
    """One HTTP/1.1 request: the headers a real ERP client sends (a POST also its Idempotency-Key)."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {key}\r\n"
        "Accept: application/json\r\nConnection: close\r\n"
    )
    if method == "POST":
        head += (
            f"Content-Type: application/json\r\nIdempotency-Key: {idempotency_key}\r\nContent-Length: {len(body)}\r\n"
        )
    return (head + "\r\n").encode() + body


def exchange(port: int, payload: bytes) -> tuple[int, bytes]:
    """Send one request on a new connection; the status and the whole body (checked against Content-Length)."""
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1.1 "):
        raise BadAnswer("malformed_response")
    length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
    if length is None or int(length.group(1)) != len(body):
        raise BadAnswer("truncated_response")
    return int(head[9:12]), body


def request(port: int, method: str, path: str, key: str, body: bytes = b"") -> tuple[int, bytes]:
    return exchange(port, request_bytes(method, path, key, port, body, uuid.uuid4().hex))


def _expect(status: int, body: bytes, wanted: int) -> dict:
    """The parsed JSON of an answer with the ``wanted`` status, else ``BadAnswer`` with its problem code."""
    data = json.loads(body) if body.startswith(b"{") else None
    if status != wanted:
        raise BadAnswer(data.get("code", str(status)) if isinstance(data, dict) else str(status))
    if not isinstance(data, dict):
        raise BadAnswer("not_json")
    return data


def _client(port: int, key: str, mode: str, start_at: float, stop_at: float, out: mp.Queue) -> None:
    rates_request = request_bytes("GET", "/api/v1/fx/rates", key, port)
    # Fresh Idempotency-Keys: unique per client process and request, without a syscall each.
    key_prefix = f"bench-{os.getpid()}-{uuid.uuid4().hex[:12]}-"
    latencies: list[float] = []
    errors: dict[str, int] = {}
    done = sent = 0
    while time.time() < start_at:
        time.sleep(0.001)
    cpu_started = time.process_time()
    while time.time() < stop_at:
        begun = time.perf_counter()
        try:
            if mode == "rates":  # the stack's own ceiling: an authenticated read, no write, no commit
                data = _expect(*exchange(port, rates_request), 200)
                if not data.get("legs"):
                    raise BadAnswer("rates_without_legs")
            else:
                sent += 1
                payload = request_bytes("POST", "/api/v1/fx/quotes", key, port, QUOTE_BODY, f"{key_prefix}{sent}")
                data = _expect(*exchange(port, payload), 201)
                if data["status"] != "open" or data["sell"] != QUOTE_SELL or data["buy"]["currency"] != PAIR[1]:
                    raise BadAnswer("quote_not_as_asked")
                if mode == "pairs":
                    sent += 1
                    path = f"/api/v1/fx/quotes/{data['id']}/accept"
                    payload = request_bytes("POST", path, key, port, b"", f"{key_prefix}{sent}")
                    swap = _expect(*exchange(port, payload), 201)
                    if swap["quote"] != data["id"] or swap["buy"] != data["buy"] or swap["sell"] != QUOTE_SELL:
                        raise BadAnswer("swap_not_the_quote")
        except BadAnswer as exc:
            errors[exc.code] = errors.get(exc.code, 0) + 1
            continue
        latencies.append(time.perf_counter() - begun)
        done += 1
    out.put((latencies, errors, done, time.process_time() - cpu_started))


# --- where the CPU goes during a phase ------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: str) -> tuple[int, str, float] | None:
    """(parent pid, command line, user + system CPU seconds) of one process, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), cmdline, (int(fields[11]) + int(fields[12])) / _TICK


def cpu_snapshot(server_pid: int, database: str) -> dict[str, float]:
    """CPU seconds so far of the gunicorn processes, the bench database's backends, other PostgreSQL
    processes (WAL writer, checkpointer, other databases) and the whole machine (every core, busy)."""
    totals = {"gunicorn": 0.0, "postgres_backends": 0.0, "postgres_other": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        found = _process_cpu(pid)
        if found is None:
            continue
        ppid, cmdline, cpu = found
        if int(pid) == server_pid or ppid == server_pid:
            totals["gunicorn"] += cpu
        elif cmdline.startswith("postgres:"):
            totals["postgres_backends" if f" {database} " in cmdline else "postgres_other"] += cpu
    cpu_line = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(cpu_line[3]) + int(cpu_line[4])  # idle + iowait
    totals["machine_busy"] = (sum(int(v) for v in cpu_line[:8]) - idle) / _TICK
    return totals


def drive(port: int, keys: list[str], mode: str, seconds: float, server_pid: int = 0, database: str = "") -> dict:
    out: mp.Queue = mp.Queue()
    start_at = time.time() + 1.0
    stop_at = start_at + seconds
    processes = [mp.Process(target=_client, args=(port, key, mode, start_at, stop_at, out)) for key in keys]
    for p in processes:
        p.start()
    time.sleep(max(0.0, start_at - time.time()))
    before = cpu_snapshot(server_pid, database)
    time.sleep(max(0.0, stop_at - time.time()))
    after = cpu_snapshot(server_pid, database)
    results = [out.get(timeout=seconds + 120) for _ in processes]
    for p in processes:
        p.join()
    latencies = [lat for r in results for lat in r[0]]
    errors: dict[str, int] = {}
    for r in results:
        for code, n in r[1].items():
            errors[code] = errors.get(code, 0) + n
    done = sum(r[2] for r in results)
    # CPU milliseconds per completed operation (a quote, a pair, a read), by who spent them.
    spent = {name: after[name] - before[name] for name in before}
    spent["clients"] = sum(r[3] for r in results)
    spent["unaccounted"] = spent["machine_busy"] - sum(v for k, v in spent.items() if k != "machine_busy")
    return {
        "per_s": done / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "count": done,
        "errors": errors,
        "cpu_ms_per_op": {name: round(value / max(done, 1) * 1000, 3) for name, value in spent.items()},
        "cores_busy": round(spent["machine_busy"] / seconds, 2),
    }


def cpu_split_line(phase: str, result: dict) -> str:
    split = ", ".join(f"{name} {ms:.2f}" for name, ms in result["cpu_ms_per_op"].items())
    return f"  CPU ms per {phase}: {split} (cores busy {result['cores_busy']:.2f} of {os.cpu_count()})"


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
    parser.add_argument("--skip-in-process", action="store_true", help="Skip the in-process CPU per call (iterating).")
    args = parser.parse_args()

    url = database_url()
    database = urlparse(url).path.lstrip("/")
    setup_django()
    keys = prepare(args.clients)
    from django.conf import settings
    from django.db import connections

    for name, value in SERVER_ENV.items():  # the same settings as the server, for the in-process phase
        if name.startswith(("FX_", "API_KEY_")):
            setattr(settings, name, int(value) if value.isdigit() else value)
    cpu = {} if args.skip_in_process else cpu_per_call(keys)
    print("CPU per call in-process (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
    connections.close_all()

    server = start_server(args.port, args.workers)
    try:
        wait_ready(args.port, keys[0])
        measured = {"server_pid": server.pid, "database": database}
        drive(args.port, keys, "quotes", min(3.0, args.seconds), **measured)  # warm-up: connections, caches, plans
        quotes = drive(args.port, keys, "quotes", args.seconds, **measured)
        print(f"quotes: {quotes['count']} in {args.seconds:.0f} s, errors {quotes['errors']}")
        print(cpu_split_line("quote", quotes))
        pairs = drive(args.port, keys, "pairs", args.seconds, **measured)
        print(f"quote+accept pairs: {pairs['count']} in {args.seconds:.0f} s, errors {pairs['errors']}")
        print(cpu_split_line("pair", pairs))
        reads = drive(args.port, keys, "rates", min(10.0, args.seconds), **measured)
        print(f"GET /fx/rates (same stack, no write): {reads['per_s']:.0f}/s, p50 {reads['p50_ms']:.1f} ms")
        print(cpu_split_line("read", reads))
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
            "clients": (
                f"{args.clients} closed-loop client processes on the same machine: raw-socket HTTP/1.1, one"
                " connection per request, fresh Idempotency-Key per POST, status and JSON body checked"
            ),
            "pair": f"{PAIR[0]} → {PAIR[1]}, fixed sell 125.00; every accept locks the same two fx_inventory rows",
            "seconds_per_phase": args.seconds,
            "errors": {"quotes": quotes["errors"], "pairs": pairs["errors"], "reads": reads["errors"]},
            "cpu_ms_per_op": {
                "quote": quotes["cpu_ms_per_op"],
                "pair": pairs["cpu_ms_per_op"],
                "read": reads["cpu_ms_per_op"],
            },
            "cores_busy": {"quotes": quotes["cores_busy"], "pairs": pairs["cores_busy"], "reads": reads["cores_busy"]},
            "load_average_at_end": os.getloadavg()[0],
            "throttle_cache": os.environ.get("API_THROTTLE_CACHE_URL") or os.environ.get("CELERY_BROKER_URL", ""),
        },
    )


if __name__ == "__main__":
    main()

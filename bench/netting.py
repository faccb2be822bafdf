"""Netting at scale (issue 6): ingest a million obligations, net and settle them in one batch. Not a test.

    make bench-netting          # DATABASE_URL=postgres://…/harbourline_bench_netting python bench/netting.py
    python bench/netting.py --obligations 200000 --skip-uniform   # a smaller run

1. 1,000 enterprises, each wallet funded by a mint through the ledger's batch path.
2. Skewed workload: each enterprise trades with ~20 counterparties picked with a
   Zipf-like preference (popular enterprises are picked more, and each payer
   favours its first counterparties), amounts log-normal, currencies HKD/USD/CNH.
   The obligations go in through obligations_create_bulk (validation included),
   one request per payer of up to 10,000 rows, from --ingest-clients processes
   at once (default 2, as several ERP systems would send them; 1 for one
   client): obligations per second of wall time, and the rate each client saw.
3. One batch through the real Celery task (netting.batch_run) on a real worker
   process (solo pool): seconds per phase, total, the worker's peak RSS (VmHWM),
   net transfers, efficiency. Then ledger_verify.
4. The same with uniformly random pairs: the worst case for netting.
5. The floor on this machine, same run: COPY of 1M rows, aggregation per pair and
   currency, one UPDATE of every row — PostgreSQL alone, from psycopg.
"""

from __future__ import annotations

import argparse
import io
import itertools
import math
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Figures, database_url, recreate_database, setup_django  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENTERPRISES = 1_000
COUNTERPARTIES = 20
FUNDING = {"HKD": 50_000_000, "USD": 10_000_000, "CNH": 50_000_000}  # minor units per wallet
CURRENCY_WEIGHTS = (("HKD", 0.5), ("USD", 0.3), ("CNH", 0.2))
MEDIAN_MINOR = {"HKD": 50_000, "USD": 7_000, "CNH": 45_000}  # log-normal medians (HKD 500, USD 70, CNH 450)
SIGMA = 1.1
QUEUE = "bench-netting"


def log(message: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {message}", flush=True)


# --- set-up -------------------------------------------------------------------------------------


def prepare(count: int):
    from django.db import transaction

    from config.ids import new_public_id
    from corporates.models import Enterprise, EnterpriseStatus
    from settlement.ledger.batch import Transfer, ledger_post_transfer_list
    from settlement.ledger.models import Account, AccountKind, EntryKind
    from settlement.ledger.selectors import platform_account
    from settlement.ledger.services import platform_accounts_open

    recreate_database(database_url())
    with transaction.atomic():
        platform_accounts_open()
        enterprises = Enterprise.objects.bulk_create(
            Enterprise(
                public_id=new_public_id("ent"),
                legal_name=f"Bench {i:04d} Ltd",
                registration_number=f"BENCH-{i:04d}",
                jurisdiction="HK",
                status=EnterpriseStatus.APPROVED,
            )
            for i in range(count)
        )
        wallets = Account.objects.bulk_create(
            Account(public_id=new_public_id("acc"), enterprise=e, currency=c, kind=AccountKind.WALLET, normal=-1)
            for e in enterprises
            for c in FUNDING
        )
        reserves = {c: platform_account(kind=AccountKind.RESERVE, currency=c) for c in FUNDING}
        ledger_post_transfer_list(
            kind=EntryKind.MINT,
            transfers=[
                Transfer(f"bench-fund:{w.id}", reserves[w.currency].id, w.id, w.currency, FUNDING[w.currency])
                for w in wallets
            ],
        )
    return enterprises


def amount_text(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def rows_for(payer_index, enterprises, counterparties, count, rng, reference_prefix, today):
    """One payer's obligations: counterparty, currency and log-normal amount per row."""
    currencies = [c for c, _ in CURRENCY_WEIGHTS]
    cum_currency = list(itertools.accumulate(w for _, w in CURRENCY_WEIGHTS))
    if counterparties is None:  # uniform: any other enterprise
        others = rng.choices(range(len(enterprises) - 1), k=count)
        payees = [o if o < payer_index else o + 1 for o in others]
    else:
        own = counterparties[payer_index]
        cum = list(itertools.accumulate(1 / (k + 1) for k in range(len(own))))
        payees = rng.choices(own, cum_weights=cum, k=count)
    chosen = rng.choices(currencies, cum_weights=cum_currency, k=count)
    rows = []
    for n, (payee, currency) in enumerate(zip(payees, chosen, strict=True)):
        minor = max(1, min(int(rng.lognormvariate(math.log(MEDIAN_MINOR[currency]), SIGMA)), 10_000_000))
        rows.append(
            {
                "payee": enterprises[payee].public_id,
                "amount": amount_text(minor),
                "currency": currency,
                "value_date": today,
                "external_reference": f"{reference_prefix}-{payer_index}-{n}",
            }
        )
    return rows


def skewed_counterparties(n: int, rng: random.Random) -> list[list[int]]:
    """A trading network: each enterprise links to ~20 counterparties, both ways, with a Zipf-like preference.

    Every enterprise picks COUNTERPARTIES / 2 partners, popular enterprises
    more often (weight 1 / rank^0.8), and each link is a relationship in both
    directions, so the average enterprise has ~20 counterparties and the
    popular ones are hubs. A payer then favours its first counterparties
    (weight 1 / k), most popular first.
    """
    popularity = list(range(n))
    rng.shuffle(popularity)
    rank = {enterprise: r for r, enterprise in enumerate(popularity)}
    cum = list(itertools.accumulate(1 / (r + 1) ** 0.8 for r in range(n)))
    links: list[set[int]] = [set() for _ in range(n)]
    for me in range(n):
        picked = 0
        while picked < COUNTERPARTIES // 2:
            (other,) = rng.choices(popularity, cum_weights=cum, k=1)
            if other != me and other not in links[me]:
                links[me].add(other)
                links[other].add(me)
                picked += 1
    return [sorted(partners, key=rank.__getitem__) for partners in links]


def ingest(enterprises, total: int, counterparties, seed: int, prefix: str, clients: int) -> tuple[float, float]:
    """Every obligation through obligations_create_bulk, from ``clients`` processes at once (as ERP
    systems would send their bulk requests); returns (obligations per second for all of them, the
    mean rate each client saw).

    Each client takes every ``clients``-th payer and builds all its rows first;
    the clock starts when every client is ready and stops when the last one is
    done, so the figure is what the platform ingested per second of wall time,
    row building excluded. One client alone leaves a core idle by construction:
    its process validates while its backend waits, then the backend copies
    while the process waits.
    """
    import multiprocessing as mp

    from django.db import connections

    connections.close_all()  # the clients fork: none may inherit this connection
    context = mp.get_context("fork")
    ready = context.Barrier(clients + 1)
    results = context.Queue()
    workers = [
        context.Process(
            target=_ingest_client,
            args=(client, clients, enterprises, total, counterparties, seed, prefix, ready, results),
        )
        for client in range(clients)
    ]
    for worker in workers:
        worker.start()
    ready.wait()
    began = time.monotonic()
    reports = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"an ingest client exited with {worker.exitcode}")
    created = sum(count for count, _, _ in reports)
    assert created == total, (created, total)
    wall = max(finished for _, _, finished in reports) - began
    per_client = sum(count / seconds for count, seconds, _ in reports) / clients
    return total / wall, per_client


def _ingest_client(client, clients, enterprises, total, counterparties, seed, prefix, ready, results) -> None:
    from django.utils import timezone

    from settlement.obligations.services import obligations_create_bulk

    rng = random.Random(seed * 1_000 + client)
    today = timezone.localdate().isoformat()
    per_payer = total // len(enterprises)
    extra = total - per_payer * len(enterprises)
    requests = []
    for index in range(client, len(enterprises), clients):
        count = per_payer + (1 if index < extra else 0)
        for start in range(0, count, 10_000):
            rows = rows_for(
                index, enterprises, counterparties, min(10_000, count - start), rng, f"{prefix}{start}", today
            )
            requests.append((enterprises[index], rows))
    ready.wait()
    began = time.monotonic()
    created = 0
    for payer, rows in requests:
        created += obligations_create_bulk(payer=payer, rows=rows).created
    finished = time.monotonic()
    results.put((created, finished - began, finished))


# --- the batch on a real worker -------------------------------------------------------------------


def start_worker() -> subprocess.Popen:
    env = dict(os.environ)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "-Q",
            QUEUE,
            "--loglevel",
            "info",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the Celery worker exited during start-up")
        if " ready." in line:
            break
    # Keep draining its output so that it never blocks on a full pipe.
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_batch(label: str) -> dict:
    from celery import Celery
    from django.conf import settings
    from django.db import connection

    from settlement.ledger.selectors import ledger_verify
    from settlement.netting.models import BatchStatus, NettingBatch
    from settlement.netting.services import batch_open

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE settlement_obligation")
        cursor.execute("ANALYZE settlement_account")
        cursor.execute("ANALYZE corporates_enterprise")
    worker = start_worker()
    try:
        baseline = current_rss_mb(worker.pid)
        batch = batch_open(trigger=f"bench {label}")
        client = Celery("bench", broker=settings.CELERY_BROKER_URL)
        began = time.perf_counter()
        client.send_task("netting.batch_run", kwargs={"batch_id": batch.pk}, queue=QUEUE)
        while NettingBatch.objects.filter(pk=batch.pk).values_list("status", flat=True)[0] != BatchStatus.COMPLETED:
            if worker.poll() is not None:
                raise SystemExit("the worker died during the batch")
            time.sleep(0.1)
        wall = time.perf_counter() - began
        rss = peak_rss_mb(worker.pid)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    batch = NettingBatch.objects.get(pk=batch.pk)
    began = time.perf_counter()
    report = ledger_verify()
    verify_seconds = time.perf_counter() - began
    log(
        f"{label}: batch {batch.public_id} completed in {batch.phase_seconds['total']:.2f} s of service time "
        f"({wall:.2f} s from sending the task), {batch.passes} liquidity pass(es)"
    )
    for phase, seconds in batch.phase_seconds.items():
        log(f"  phase {phase:<14} {seconds:8.3f} s")
    for currency, figures in batch.report["currencies"].items():
        log(
            f"  {currency}: {figures['gross_count']:,} obligations, {figures['pairs']:,} pairs, "
            f"{figures['net_transfers']:,} net transfers; efficiency bilateral {figures['efficiency_bilateral_pct']}%, "
            f"multilateral {figures['efficiency_multilateral_pct']}%"
        )
    log(f"  obligations {batch.report['obligations']}; worker RSS {baseline:.0f} MB idle, peak {rss:.0f} MB")
    log(f"  verify_ledger: {'ok' if report.ok else 'BREACHED: ' + '; '.join(report.breaches)} ({verify_seconds:.1f} s)")
    if not report.ok:
        raise SystemExit("ledger invariants breached")
    return {
        "batch": batch.public_id,
        "total_s": batch.phase_seconds["total"],
        "wall_s": wall,
        "phases": batch.phase_seconds,
        "passes": batch.passes,
        "peak_rss_mb": rss,
        "idle_rss_mb": baseline,
        "net_transfers": batch.report["net_transfers"],
        "efficiency_pct": float(batch.report["efficiency_bilateral_pct"]),
        "efficiency_multilateral_pct": float(batch.report["efficiency_multilateral_pct"]),
        "report": batch.report,
        "verify_ledger_ok": report.ok,
    }


# --- the floor ------------------------------------------------------------------------------------


def floors(url: str, rows: int, enterprises: int) -> dict[str, float]:
    """What PostgreSQL alone needs for the same volume: COPY, aggregate, UPDATE every row."""
    import psycopg

    rng = random.Random(7)
    buffer = io.StringIO()
    currencies = ("HKD", "USD", "CNH")
    for _ in range(rows):
        payer = rng.randrange(enterprises)
        payee = (payer + 1 + rng.randrange(enterprises - 1)) % enterprises
        buffer.write(f"{payer}\t{payee}\t{rng.choice(currencies)}\t{rng.randint(1, 10_000_000)}\n")
    data = buffer.getvalue()
    figures = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_floor")
        conn.execute(
            "CREATE TABLE bench_floor (id bigserial PRIMARY KEY, payer bigint NOT NULL, payee bigint NOT NULL,"
            " currency text NOT NULL, amount bigint NOT NULL, status text NOT NULL DEFAULT 'pending')"
        )
        began = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy("COPY bench_floor (payer, payee, currency, amount) FROM STDIN") as cp:
            cp.write(data)
        figures["copy_s"] = time.perf_counter() - began
        conn.execute("ANALYZE bench_floor")
        began = time.perf_counter()
        conn.execute(
            "SELECT currency, least(payer, payee), greatest(payer, payee),"
            " sum(CASE WHEN payer < payee THEN amount ELSE 0 END), sum(CASE WHEN payer > payee THEN amount ELSE 0 END)"
            " FROM bench_floor GROUP BY 1, 2, 3"
        ).fetchall()
        figures["aggregate_s"] = time.perf_counter() - began
        began = time.perf_counter()
        conn.execute("UPDATE bench_floor SET status = 'settled'")
        figures["update_s"] = time.perf_counter() - began
        conn.execute("DROP TABLE bench_floor")
    return figures


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--obligations", type=int, default=1_000_000)
    parser.add_argument("--enterprises", type=int, default=ENTERPRISES)
    parser.add_argument("--skip-uniform", action="store_true")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument(
        "--ingest-clients", type=int, default=2, help="Processes sending bulk requests at once (1: one client)."
    )
    args = parser.parse_args()

    url = database_url()
    setup_django()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    log(f"creating {args.enterprises:,} funded enterprises in a fresh database")
    enterprises = prepare(args.enterprises)
    figures = Figures("netting")
    notes: dict = {
        "obligations": args.obligations,
        "enterprises": args.enterprises,
        "seed": args.seed,
        "ingest_clients": args.ingest_clients,
        "database_settings": "server defaults (no tuning for the benchmark)",
    }

    log(f"skewed workload: ingesting {args.obligations:,} obligations through obligations_create_bulk")
    counterparties = skewed_counterparties(args.enterprises, rng)
    ingest_rate, per_client = ingest(enterprises, args.obligations, counterparties, args.seed, "S", args.ingest_clients)
    log(f"ingest: {ingest_rate:,.0f} obligations/s from {args.ingest_clients} clients ({per_client:,.0f}/s each)")
    skewed = run_batch("skewed")
    notes["skewed"] = skewed

    uniform = None
    if not args.skip_uniform:
        log(f"uniform worst case: ingesting {args.obligations:,} obligations between random pairs")
        uniform_rate, uniform_per_client = ingest(
            enterprises, args.obligations, None, args.seed + 1, "U", args.ingest_clients
        )
        log(f"ingest: {uniform_rate:,.0f} obligations/s ({uniform_per_client:,.0f}/s each client)")
        uniform = run_batch("uniform")
        notes["uniform"] = uniform

    log(f"floor: PostgreSQL alone on {args.obligations:,} rows")
    floor = floors(url, args.obligations, args.enterprises)
    log(
        f"  COPY {floor['copy_s']:.2f} s, aggregate per pair and currency {floor['aggregate_s']:.2f} s, "
        f"UPDATE of every row {floor['update_s']:.2f} s"
    )
    notes["floor"] = floor
    notes["elapsed_s"] = time.perf_counter() - started
    notes["load_average_at_end"] = os.getloadavg()

    figures.add("netting.ingest_per_s", ingest_rate, "obligations/s", target=50_000)
    figures.add("netting.ingest_per_s.per_client", per_client, "obligations/s")
    figures.add("netting.total_s", skewed["total_s"], "s", target=10)
    figures.add("netting.peak_rss_mb", skewed["peak_rss_mb"], "MB", target=500)
    figures.add("netting.efficiency_pct", skewed["efficiency_pct"], "%")
    figures.add("netting.net_transfers", skewed["net_transfers"], "transfers")
    for phase, seconds in skewed["phases"].items():
        if phase != "total":
            figures.add(f"netting.phase.{phase}_s", seconds, "s")
    if uniform:
        figures.add("netting.ingest_per_s.uniform", uniform_rate, "obligations/s", target=50_000)
        figures.add("netting.ingest_per_s.uniform.per_client", uniform_per_client, "obligations/s")
        figures.add("netting.total_s.uniform", uniform["total_s"], "s", target=45)
        figures.add("netting.peak_rss_mb.uniform", uniform["peak_rss_mb"], "MB", target=500)
        figures.add("netting.efficiency_pct.uniform", uniform["efficiency_pct"], "%")
        figures.add("netting.net_transfers.uniform", uniform["net_transfers"], "transfers")
        for phase, seconds in uniform["phases"].items():
            if phase != "total":
                figures.add(f"netting.phase.{phase}_s.uniform", seconds, "s")
    figures.add("netting.floor.copy_s", floor["copy_s"], "s")
    figures.add("netting.floor.aggregate_s", floor["aggregate_s"], "s")
    figures.add("netting.floor.update_all_s", floor["update_s"], "s")
    figures.finish(url, notes=notes)


if __name__ == "__main__":
    main()

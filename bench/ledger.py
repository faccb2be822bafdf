"""Ledger throughput: two-leg transfers per second through ledger_post (issue 2). Not a test.

    make bench-ledger            # DATABASE_URL=postgres://…/harbourline_bench python bench/ledger.py

Among 1,000 funded HKD wallets, random pairs, small amounts. Runs, each in 1
and in 4 processes:

* service  — settlement.ledger.services.ledger_post, the code the platform runs;
* raw_sql  — the floor of a client-side transaction: BEGIN, two conditional
             UPDATEs in id order, INSERT entry, INSERT postings, COMMIT, from psycopg;
* sql_function — the floor of one server-side call: hl_ledger_post from psycopg;
* hot_account — ledger_post where every entry touches the same platform account
             (mints from the HKD reserve), in 4 processes: what one hot row caps at.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Figures, database_url, percentile, recreate_database, setup_django  # noqa: E402

WALLETS = 1_000
FUNDING_MINOR = 100_000_000  # HKD 1,000,000.00 per wallet


def prepare() -> None:
    from django.db import transaction

    from config.ids import new_public_id
    from corporates.models import Enterprise, EnterpriseStatus
    from settlement.ledger.models import Account, AccountKind, EntryKind
    from settlement.ledger.selectors import platform_account
    from settlement.ledger.services import Leg, ledger_post, platform_accounts_open

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
            for i in range(WALLETS)
        )
        wallets = Account.objects.bulk_create(
            Account(public_id=new_public_id("acc"), enterprise=e, currency="HKD", kind=AccountKind.WALLET, normal=-1)
            for e in enterprises
        )
        reserve = platform_account(kind=AccountKind.RESERVE, currency="HKD")
        # One opening entry: debit the reserve, credit every wallet.
        ledger_post(
            idempotency_key="bench:funding",
            kind=EntryKind.MINT,
            legs=[Leg(reserve.id, "HKD", FUNDING_MINOR * len(wallets))]
            + [Leg(w.id, "HKD", -FUNDING_MINOR) for w in wallets],
        )


def wallet_ids() -> list[int]:
    from settlement.ledger.models import Account, AccountKind

    return list(Account.objects.filter(kind=AccountKind.WALLET).order_by("id").values_list("id", flat=True))


# --- workers: each runs in its own process, with its own connection -----------------------


def _service_worker(run: str, worker: int, count: int, start_at: float, hot: bool) -> tuple[list[float], float]:
    setup_django()
    from settlement.ledger.models import AccountKind, EntryKind
    from settlement.ledger.selectors import platform_account
    from settlement.ledger.services import Leg, ledger_post

    ids = wallet_ids()
    reserve_id = platform_account(kind=AccountKind.RESERVE, currency="HKD").id
    rng = random.Random(hash((run, worker)))
    latencies = []
    _wait(start_at)
    for i in range(count):
        amount = rng.randint(1, 10_000)
        if hot:
            legs = [Leg(reserve_id, "HKD", amount), Leg(rng.choice(ids), "HKD", -amount)]
            kind = EntryKind.MINT
        else:
            payer, payee = rng.sample(ids, 2)
            legs = [Leg(payer, "HKD", amount), Leg(payee, "HKD", -amount)]
            kind = EntryKind.TRANSFER
        t0 = time.perf_counter()
        ledger_post(idempotency_key=f"bench:{run}:{worker}:{i}", kind=kind, legs=legs)
        latencies.append(time.perf_counter() - t0)
    return latencies, time.time()


def _raw_sql_worker(run: str, worker: int, count: int, start_at: float, _hot: bool) -> tuple[list[float], float]:
    import psycopg

    setup_django()
    ids = wallet_ids()
    rng = random.Random(hash((run, worker)))
    latencies = []
    with psycopg.connect(database_url()) as conn:
        _wait(start_at)
        for i in range(count):
            amount = rng.randint(1, 10_000)
            payer, payee = rng.sample(ids, 2)
            t0 = time.perf_counter()
            with conn.transaction():
                # Two conditional updates in id order: lock, check funds, write.
                for account, delta in sorted([(payer, -amount), (payee, amount)]):
                    cur = conn.execute(
                        "UPDATE settlement_account SET balance = balance + %s WHERE id = %s AND balance + %s >= 0",
                        (delta, account, delta),
                    )
                    if cur.rowcount != 1:
                        raise RuntimeError("insufficient funds in the floor run")
                entry_id = conn.execute(
                    "INSERT INTO settlement_journalentry (public_id, idempotency_key, content_hash, kind, memo,"
                    " metadata, created_at) VALUES (%s, %s, '', 'transfer', '', '{}', now()) RETURNING id",
                    (f"je_r{worker}x{i}{run[-6:]}", f"bench:{run}:{worker}:{i}"),
                ).fetchone()[0]
                conn.execute(
                    "INSERT INTO settlement_posting (entry_id, account_id, currency, amount)"
                    " VALUES (%s, %s, 'HKD', %s), (%s, %s, 'HKD', %s)",
                    (entry_id, payer, amount, entry_id, payee, -amount),
                )
            latencies.append(time.perf_counter() - t0)
    return latencies, time.time()


def _sql_function_worker(run: str, worker: int, count: int, start_at: float, _hot: bool) -> tuple[list[float], float]:
    import psycopg

    setup_django()
    ids = wallet_ids()
    rng = random.Random(hash((run, worker)))
    latencies = []
    with psycopg.connect(database_url(), autocommit=True) as conn:
        _wait(start_at)
        for i in range(count):
            amount = rng.randint(1, 10_000)
            payer, payee = rng.sample(ids, 2)
            t0 = time.perf_counter()
            status = conn.execute(
                "SELECT status FROM hl_ledger_post(%s, %s, 'x', 'transfer', '', '{}'::jsonb, NULL,"
                " %s::bigint[], %s::bigint[], %s::text[])",
                (
                    f"je_f{worker}x{i}{run[-6:]}",
                    f"bench:{run}:{worker}:{i}",
                    [payer, payee],
                    [amount, -amount],
                    ["HKD", "HKD"],
                ),
            ).fetchone()[0]
            if status != "created":
                raise RuntimeError(f"floor run refused: {status}")
            latencies.append(time.perf_counter() - t0)
    return latencies, time.time()


def _wait(start_at: float) -> None:
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)


WORKERS = {"service": _service_worker, "raw_sql": _raw_sql_worker, "sql_function": _sql_function_worker}


def run(name: str, processes: int, total: int, hot: bool = False) -> tuple[float, list[float]]:
    """Run `total` transfers split over `processes`; return (transfers/s, latencies in seconds)."""
    from django.db import connections

    connections.close_all()  # children open their own
    ctx = mp.get_context("spawn")
    per_worker = total // processes
    start_at = time.time() + 3.0  # time for every child to start and load Django
    run_id = f"{name}{processes}{'h' if hot else ''}{int(time.time())}"
    with ctx.Pool(processes) as pool:
        results = [pool.apply_async(WORKERS[name], (run_id, w, per_worker, start_at, hot)) for w in range(processes)]
        outcomes = [r.get() for r in results]
    latencies = [lat for lats, _ in outcomes for lat in lats]
    # Wall time from the common start to the last worker's last transfer.
    elapsed = max(end for _, end in outcomes) - start_at
    return len(latencies) / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transfers", type=int, default=6_000, help="transfers per run (default 6000)")
    args = parser.parse_args()

    setup_django()
    print(f"preparing {WALLETS} funded wallets in a fresh database …", flush=True)
    prepare()

    figures = Figures("ledger")
    rates: dict[tuple[str, int], float] = {}
    p99: dict[tuple[str, int], float] = {}
    p50: dict[tuple[str, int], float] = {}
    print(f"\n{'run':<14}{'procs':>6}{'transfers/s':>14}{'p50 ms':>10}{'p99 ms':>10}")
    for name in ("service", "raw_sql", "sql_function"):
        for processes in (1, 4):
            rate, lat = run(name, processes, args.transfers)
            rates[(name, processes)] = rate
            p50[(name, processes)] = percentile(lat, 50) * 1000
            p99[(name, processes)] = percentile(lat, 99) * 1000
            row = f"{name:<14}{processes:>6}{rate:>14.0f}{p50[(name, processes)]:>10.2f}{p99[(name, processes)]:>10.2f}"
            print(row, flush=True)
    hot_rate, hot_lat = run("service", 4, args.transfers, hot=True)
    print(
        f"{'hot_account':<14}{4:>6}{hot_rate:>14.0f}{percentile(hot_lat, 50) * 1000:>10.2f}"
        f"{percentile(hot_lat, 99) * 1000:>10.2f}"
    )

    from django.core.management import call_command

    call_command("verify_ledger")

    for processes, target in ((1, 1000), (4, 2500)):
        figures.add(f"ledger.transfers_per_s.{processes}proc", rates[("service", processes)], "transfers/s", target)
    figures.add("ledger.p50_ms.1proc", p50[("service", 1)], "ms")
    figures.add("ledger.p99_ms.1proc", p99[("service", 1)], "ms")
    figures.add("ledger.p99_ms.4proc", p99[("service", 4)], "ms", 10)
    for floor in ("raw_sql", "sql_function"):
        for processes in (1, 4):
            figures.add(f"ledger.floor.{floor}.{processes}proc", rates[(floor, processes)], "transfers/s")
            figures.add(
                f"ledger.fraction_of_{floor}.{processes}proc",
                100 * rates[("service", processes)] / rates[(floor, processes)],
                "%",
            )
    figures.add("ledger.hot_account.transfers_per_s.4proc", hot_rate, "transfers/s")
    figures.add("ledger.hot_account.p99_ms.4proc", percentile(hot_lat, 99) * 1000, "ms")
    figures.finish(database_url(), notes={"transfers_per_run": args.transfers, "wallets": WALLETS})


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    main()

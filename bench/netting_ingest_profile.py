"""Where a bulk obligations request spends its CPU, per row: validation, COPY (Python and backend), commit.

Not a benchmark (no BENCH lines): a profile that does not depend on the other
cores being idle. Runs a few 10,000-row requests against a database that
``make bench-netting`` left behind (its enterprises), each in a transaction
that commits:

    DATABASE_URL=postgres://…/harbourline_bench_netting REQS=5 python bench/netting_ingest_profile.py uniform

Process CPU (``time.process_time``) for the Python side, the backend's CPU
from ``/proc/<pid>/stat`` for PostgreSQL's side (same machine).
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django  # noqa: E402


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    setup_django()
    from django.db import connection, transaction
    from django.utils import timezone

    import bench.netting as workload
    from corporates.models import Enterprise
    from settlement.obligations import services

    mode = sys.argv[1] if len(sys.argv) > 1 else "uniform"
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    enterprises = list(Enterprise.objects.order_by("id"))
    today = timezone.localdate().isoformat()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    totals = dict.fromkeys(("validate", "copy_python", "copy_backend", "commit_wall", "commit_backend"), 0.0)
    rows_done = 0
    for _ in range(int(os.environ.get("REQS", "5"))):
        index = rng.randrange(len(enterprises))
        partners = None
        if mode != "uniform":
            partners = [[j for j in rng.sample(range(len(enterprises)), 20) if j != index] for _ in enterprises]
        rows = workload.rows_for(index, enterprises, partners, 10_000, rng, f"P{time.time_ns()}", today)
        with transaction.atomic():
            p0 = time.process_time()
            valid, errors = services._validate_rows(enterprises[index], rows)
            p1, b1 = time.process_time(), backend_cpu(pid)
            services._insert(enterprises[index], valid, None)
            p2, b2 = time.process_time(), backend_cpu(pid)
            w2 = time.perf_counter()
        w3, b3 = time.perf_counter(), backend_cpu(pid)
        assert not errors, errors[:3]
        totals["validate"] += p1 - p0
        totals["copy_python"] += p2 - p1
        totals["copy_backend"] += b2 - b1
        totals["commit_wall"] += w3 - w2
        totals["commit_backend"] += b3 - b2
        rows_done += len(rows)
    for name, seconds in totals.items():
        print(f"{name:<15} {seconds / rows_done * 1e6:6.2f} µs/row")


if __name__ == "__main__":
    main()

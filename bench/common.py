"""Shared plumbing for the benchmarks: a fresh PostgreSQL database, machine facts, BENCH lines.

Benchmarks are not tests. Each prints its figures and, as its very last lines,
one `BENCH <name> <value> <unit>` line per figure, and writes the same figures
with the machine and the date to bench/results/<benchmark>.json.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("benchmarks run on PostgreSQL: set DATABASE_URL=postgres://…")
    return url


def recreate_database(url: str) -> None:
    """Drop and create the benchmark's own database, then migrate it."""
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def machine(url: str) -> dict:
    with psycopg.connect(url) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
        sync_commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "postgresql": pg_version,
        "synchronous_commit": sync_commit,
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


class Figures:
    """Collects figures; `finish` writes the JSON and prints the BENCH lines last."""

    def __init__(self, benchmark: str) -> None:
        self.benchmark = benchmark
        self.rows: list[tuple[str, float, str]] = []

    def add(self, name: str, value: float, unit: str, target: float | None = None) -> None:
        self.rows.append((name, value, unit))
        if target is not None:
            self.rows.append((f"{name}.target", target, unit))

    def finish(self, url: str, notes: dict | None = None) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        payload = {
            "benchmark": self.benchmark,
            "machine": machine(url),
            "figures": [{"name": n, "value": round(v, 3), "unit": u} for n, v, u in self.rows],
            "notes": notes or {},
        }
        (RESULTS / f"{self.benchmark}.json").write_text(json.dumps(payload, indent=2) + "\n")
        sys.stdout.flush()
        for name, value, unit in self.rows:
            print(f"BENCH {name} {value:.1f} {unit}" if value >= 10 else f"BENCH {name} {value:.3f} {unit}")
        sys.stdout.flush()

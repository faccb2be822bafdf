"""A real Celery worker on the real broker (Redis in `make test`), reading the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def worker_environment(result_backend: str | None = None) -> dict[str, str]:
    """The environment of a child process that must see what this test process sees."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER'] or 'root'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    if result_backend:
        env["CELERY_RESULT_BACKEND"] = result_backend
    return env


@pytest.fixture
def celery_worker_process(transactional_db):
    """Start `celery -A config worker` as a subprocess; yield a function to stop (or kill) it."""
    if connection.vendor != "postgresql" or settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("needs PostgreSQL and a real broker (make test)")
    queue = f"itest-{os.getpid()}-{time.monotonic_ns()}"
    env = worker_environment(result_backend=settings.CELERY_BROKER_URL)
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
            queue,
            "--loglevel",
            "warning",
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
    try:
        yield proc, queue
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

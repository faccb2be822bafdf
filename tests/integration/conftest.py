"""A real Celery worker on the real broker (Redis in `make test`), reading the test database."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from django.conf import settings
from django.db import connection

from tests.processes import celery_worker_start, worker_environment


@pytest.fixture
def celery_worker_process(transactional_db):
    """Start `celery -A config worker` as a subprocess; yield a function to stop (or kill) it."""
    if connection.vendor != "postgresql" or settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("needs PostgreSQL and a real broker (make test)")
    queue = f"itest-{os.getpid()}-{time.monotonic_ns()}"
    env = worker_environment(result_backend=settings.CELERY_BROKER_URL)
    proc = celery_worker_start(queue, env)
    try:
        yield proc, queue
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

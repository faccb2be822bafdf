"""Child processes the integration tests start: a real Celery worker on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def worker_environment(result_backend: str | None = None) -> dict[str, str]:
    """The environment of a child process that must see what this test process sees."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    user, host, port = db["USER"] or "root", db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    env["DATABASE_URL"] = f"postgres://{user}@{host}:{port}/{db['NAME']}"
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    # Test receivers listen on 127.0.0.1 over http: the worker must allow that when this process does.
    env["WEBHOOK_ALLOW_INSECURE_URLS"] = "1" if settings.WEBHOOK_ALLOW_INSECURE_URLS else "0"
    if result_backend:
        env["CELERY_RESULT_BACKEND"] = result_backend
    return env


def celery_worker_start(queue: str, env: dict[str, str], stdout: IO | int | None = subprocess.PIPE) -> subprocess.Popen:
    """`celery -A config worker` on one private queue, solo pool, nothing chatty."""
    return subprocess.Popen(
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
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
    )

"""Running a test's target in several threads at once, each on its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def run_in_threads(target: Callable[[], None], count: int, *, timeout: float = 60) -> None:
    """Start ``count`` threads running ``target``, then wait for every one (each closes its connection)."""

    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), f"a thread of {target.__name__} did not finish"

"""Browser tests: Playwright (sync API) driving Debian's chromium against pytest-django's live_server.

Run them alone with ``pytest -m browser``; ``make test`` installs chromium
first when it is missing. live_server needs real commits, so every browser
test is ``django_db(transaction=True)``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from axes.utils import reset as axes_reset
from django.db import connections

CHROMIUM = os.environ.get("HARBOURLINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def _chromium() -> Iterator[object]:
    # Per test, so that the permission below does not outlive the browser tests.
    if not shutil.which(CHROMIUM):
        pytest.skip(f"chromium not found at {CHROMIUM}: `make chromium` installs Debian's")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop on this thread; Django's ORM
    # refuses to run beside one unless told it is safe. It is here: the test
    # body and the browser take turns on one thread, never at once.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # Django keys its connections by context, and starting Playwright switches
    # context: close them on each side, or one stays open and the test
    # database cannot be dropped at the end of the run.
    connections.close_all()
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()
        connections.close_all()
        playwright.stop()
        connections.close_all()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(_chromium, live_server, transactional_db, settings, tmp_path):
    """A fresh browser context (no cookies) per test, sign-in throttling cleared, uploads under tmp_path."""
    # live_server serves from a thread of this process, so it sees these settings.
    settings.MEDIA_ROOT = tmp_path / "media"
    axes_reset()
    context = _chromium.new_context(base_url=live_server.url, locale="en-GB", timezone_id="Asia/Hong_Kong")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()

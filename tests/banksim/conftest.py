"""banksim as a real subprocess (temp database, free port) and a real webhook receiver.

Other areas can use these fixtures by importing them into their own conftest:
``from tests.banksim.conftest import banksim, banksim_factory, banksim_settings, webhook_receiver  # noqa: F401``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.banksim.harness import Banksim, WebhookReceiver, banksim_start


@pytest.fixture
def banksim_factory(tmp_path) -> Iterator[Callable[..., Banksim]]:
    """Start banksim with options (``webhook_url=…``, ``error_rate=…``, ``opening_balances={"hkd": 10**8}``…)."""
    started: list[Banksim] = []

    def start_in_own_dir(**options: Any) -> Banksim:
        directory = tmp_path / f"bank{len(started)}"
        directory.mkdir(exist_ok=True)
        options.setdefault("db_path", directory / "banksim.sqlite3")
        bank = banksim_start(directory, **options)
        started.append(bank)
        return bank

    yield start_in_own_dir
    for bank in started:
        bank.stop()


@pytest.fixture
def banksim(banksim_factory) -> Banksim:
    """banksim with a million HKD, USD and CNH in reserve and no webhook endpoint."""
    return banksim_factory(opening_balances={"hkd": 100_000_000, "usd": 100_000_000, "cnh": 100_000_000})


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def banksim_settings(banksim, settings) -> Banksim:
    """banksim running, and settings.BANK_RAILS_* pointing at it (for code that calls rails_client())."""
    settings.BANK_RAILS_BASE_URL = banksim.url
    settings.BANK_RAILS_SECRET_KEY = banksim.secret_key
    settings.BANK_RAILS_WEBHOOK_SECRET = banksim.webhook_secret
    settings.BANK_RAILS_ACCOUNT_ID = banksim.account_id
    settings.BANK_RAILS_RETRY_BACKOFF_S = 0.01
    return banksim

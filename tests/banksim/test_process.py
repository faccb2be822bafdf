"""banksim as `make run` starts it (no arguments), its configuration, and the credit CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from banksim.config import config_load
from tests.banksim.harness import BASE_DIR

pytestmark = pytest.mark.integration


def test_defaults_are_what_make_run_needs():
    config = config_load([], environ={})

    assert (config.host, config.port) == ("127.0.0.1", 8010)
    assert config.db == str(BASE_DIR / "var" / "banksim" / "banksim.sqlite3")
    assert config.webhook_url == "http://127.0.0.1:8000/webhooks/bank/"
    assert config.currencies == ("hkd", "usd", "cnh")


def test_defaults_match_the_platforms_bank_rails_settings(settings):
    config = config_load([], environ={})

    assert settings.BANK_RAILS_BASE_URL == f"http://{config.host}:{config.port}"
    assert settings.BANK_RAILS_SECRET_KEY == config.secret_key
    assert settings.BANK_RAILS_WEBHOOK_SECRET == config.webhook_secret
    assert settings.BANK_RAILS_ACCOUNT_ID == config.account_id


def test_environment_variables_configure_and_the_command_line_wins():
    environ = {
        "BANKSIM_PORT": "9100",
        "BANKSIM_ERROR_RATE": "0.25",
        "BANKSIM_FAIL_PAYOUTS": "declined",
        "BANKSIM_OPENING_BALANCES": "hkd=100,cnh=7",
        "BANKSIM_WEBHOOKS_PAUSED": "true",
        "HARBOURLINE_VAR_DIR": "/tmp/hl-var",
    }

    config = config_load(["--port", "9200", "--latency-ms", "15"], environ=environ)

    assert config.port == 9200
    assert (config.faults.error_rate, config.faults.latency_ms, config.faults.fail_payouts) == (0.25, 15, "declined")
    assert config.opening_balances == {"hkd": 100, "cnh": 7}
    assert config.faults.webhooks_paused is True


def test_credit_cli_credits_a_wire_in_minor_units(banksim_factory):
    bank = banksim_factory()
    command = [sys.executable, "-m", "banksim.credit", "--url", bank.url, "--secret-key", bank.secret_key]

    done = subprocess.run(
        [*command, "--amount", "1250.50", "--currency", "HKD", "--reference", "HLDEP-X1"],
        cwd=BASE_DIR,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    refused = subprocess.run(
        [*command, "--amount", "1.005", "--currency", "HKD", "--reference", "HLDEP-X1"],
        cwd=BASE_DIR,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 0, done.stderr
    assert "HLDEP-X1" in done.stdout
    with bank.client() as rails:
        assert rails.balance_retrieve().available["HKD"] == 125_050
    assert refused.returncode == 2 and "decimal places" in refused.stderr

"""banksim's configuration: command-line options, each with an environment-variable equivalent.

Precedence: command line, then ``BANKSIM_*`` environment variables, then the
defaults below. The defaults are what ``make run`` needs: port 8010, state
under var/banksim/, webhooks to the platform at 127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Must match the platform's BANK_RAILS_* defaults (config/settings.py) so that
# `make run` works with no configuration. Test-mode keys: never used in production.
DEFAULT_SECRET_KEY = "sk_test_banksim_harbourline"  # noqa: S105 - test-mode default
DEFAULT_WEBHOOK_SECRET = "whsec_banksim_harbourline"  # noqa: S105 - test-mode default
DEFAULT_ACCOUNT_ID = "acct_harbourline"
DEFAULT_WEBHOOK_EVENTS = ("payout.paid", "payout.failed", "payout.canceled", "inbound_wire.received")


def default_db_path() -> str:
    var_dir = Path(os.environ.get("HARBOURLINE_VAR_DIR", BASE_DIR / "var"))
    return str(var_dir / "banksim" / "banksim.sqlite3")


@dataclass
class Faults:
    """What can be changed at run time through ``POST /v1/test_helpers/faults``."""

    latency_ms: int = 0  # added to every API request
    error_rate: float = 0.0  # share of API requests answering 500 without doing anything
    timeout_rate: float = 0.0  # share of API requests done, then answered only after timeout_ms
    timeout_ms: int = 30_000  # longer than any sane client timeout
    fail_payouts: str = ""  # a Stripe failure_code: payouts created now end failed with it
    fail_payouts_rate: float = 1.0  # share of payouts that fail when fail_payouts is set
    transit_delay_ms: int = 100  # pending -> in_transit
    settle_delay_ms: int = 200  # in_transit -> paid / failed
    webhook_duplicate_rate: float = 0.0  # share of deliveries sent a second time
    webhook_shuffle_ms: int = 0  # each delivery is held back by a random 0..N ms: out of order
    webhooks_paused: bool = False  # hold every delivery (to build a backlog, then release it)


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 8010
    db: str = field(default_factory=default_db_path)  # ":memory:" keeps nothing
    secret_key: str = DEFAULT_SECRET_KEY
    account_id: str = DEFAULT_ACCOUNT_ID
    currencies: tuple[str, ...] = ("hkd", "usd", "cnh")
    opening_balances: dict[str, int] = field(default_factory=dict)  # minor units, applied to a new database
    webhook_url: str = "http://127.0.0.1:8000/webhooks/bank/"
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    webhook_events: tuple[str, ...] = DEFAULT_WEBHOOK_EVENTS
    webhook_retry_base_ms: int = 1000  # first retry after this, doubling each time
    webhook_retry_max_ms: int = 60_000  # cap of the backoff; retries go on until a 2xx
    webhook_timeout_s: float = 10.0
    webhook_workers: int = 8
    faults: Faults = field(default_factory=Faults)
    verbose: bool = False  # log every request


def _parse_balances(text: str) -> dict[str, int]:
    """``hkd=100000000,usd=5000`` (minor units) -> {"hkd": 100000000, "usd": 5000}."""
    balances: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        currency, _, amount = item.partition("=")
        balances[currency.strip().lower()] = int(amount)
    return balances


def _csv(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


# option name -> (converter, help). Each also reads BANKSIM_<NAME>.
_OPTIONS: dict[str, tuple[object, str]] = {
    "host": (str, "interface to listen on"),
    "port": (int, "port to listen on (0: any free port)"),
    "db": (str, "SQLite file of the bank's state, or :memory:"),
    "secret_key": (str, "the API secret key clients send as 'Authorization: Bearer sk_…'"),
    "account_id": (str, "the custodian account id (acct_…) that owns the external accounts"),
    "currencies": (_csv, "currencies the bank holds, lowercase, comma-separated"),
    "opening_balances": (_parse_balances, "opening balances of a new database, e.g. hkd=100000000,usd=500000"),
    "webhook_url": (str, "where events are delivered; empty: nowhere"),
    "webhook_secret": (str, "the endpoint secret (whsec_…) that signs deliveries"),
    "webhook_events": (_csv, "event types delivered, comma-separated; '*' for all"),
    "webhook_retry_base_ms": (int, "first retry delay of a failed delivery"),
    "webhook_retry_max_ms": (int, "longest retry delay"),
    "webhook_timeout_s": (float, "how long a delivery waits for the receiver"),
    "webhook_workers": (int, "deliveries in flight at once"),
    "latency_ms": (int, "fault: latency added to every API request"),
    "error_rate": (float, "fault: share of API requests answering 500"),
    "timeout_rate": (float, "fault: share of API requests answered only after --timeout-ms"),
    "timeout_ms": (int, "fault: how long a 'timed out' request is held"),
    "fail_payouts": (str, "fault: payouts fail with this failure_code (e.g. account_closed)"),
    "fail_payouts_rate": (float, "fault: share of payouts that fail when --fail-payouts is set"),
    "transit_delay_ms": (int, "payout lifecycle: pending -> in_transit after this"),
    "settle_delay_ms": (int, "payout lifecycle: in_transit -> paid/failed after this"),
    "webhook_duplicate_rate": (float, "fault: share of deliveries sent twice"),
    "webhook_shuffle_ms": (int, "fault: hold each delivery a random 0..N ms (out-of-order delivery)"),
}
_FAULT_NAMES = {f.name for f in fields(Faults)}


def _bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


def config_load(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    environ = dict(os.environ if environ is None else environ)
    parser = argparse.ArgumentParser(prog="python -m banksim.server", description="Simulated custodian bank.")
    for name, (_, help_text) in _OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=help_text)
    parser.add_argument("--webhooks-paused", dest="webhooks_paused", action="store_true", default=None)
    parser.add_argument("--verbose", dest="verbose", action="store_true", default=None, help="log every request")
    args = vars(parser.parse_args(argv))

    config = Config()
    for name in [*_OPTIONS, "webhooks_paused", "verbose"]:
        raw = args.get(name)
        if raw is None:
            raw = environ.get("BANKSIM_" + name.upper())
        if raw is None:
            continue
        if name in {"webhooks_paused", "verbose"}:
            value = raw if isinstance(raw, bool) else _bool(raw)
        else:
            converter = _OPTIONS[name][0]
            value = converter(raw)  # type: ignore[operator]
        if name in _FAULT_NAMES:
            setattr(config.faults, name, value)
        else:
            setattr(config, name, value)
    config.currencies = tuple(c.lower() for c in config.currencies)
    return config

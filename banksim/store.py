"""The bank's state and what changes it: payouts, bank accounts, inbound wires, balances, events.

Accounting model of the simulated custodian: one account (``acct_…``) holds an
available balance per currency, in integer minor units, which is the reserve
the platform keeps at the bank. Every change to it is a balance transaction
(``txn_…``): an inbound wire credits it, a payout debits it when created (as
Stripe does), and a failed or cancelled payout credits it back — including a
paid payout that the beneficiary's bank returns later (test helper
``payout_return``: Stripe reports it as ``payout.failed`` after ``payout.paid``). The balance
row and the balance transactions change in one SQLite transaction, so that the
balance always equals the sum of its transactions.

Every state change records an event (``evt_…``); enabled event types also get
a delivery row that the webhook dispatcher works through. One re-entrant lock
serialises every write: banksim is a test double, and one writer keeps it
simple and exact.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from banksim.config import Config
from banksim.wire import (
    StripeError,
    list_object,
    new_id,
    now,
    param_choice,
    param_currency,
    param_limit,
    param_metadata,
    param_positive_int,
    param_required,
    param_string,
    params_allow,
    resource_missing,
)

API_VERSION = "2024-06-20"

# Stripe's payout failure codes and the messages it shows with them.
FAILURE_MESSAGES: dict[str, str] = {
    "account_closed": "The bank account has been closed.",
    "account_frozen": "The bank account has been frozen.",
    "bank_account_restricted": "The bank account has restrictions on the type or number of payouts allowed.",
    "bank_ownership_changed": "The destination bank account is no longer valid: its branch has changed ownership.",
    "could_not_process": "The bank could not process this payout.",
    "debit_not_authorized": "Debit transactions are not approved on the bank account.",
    "declined": "The bank has declined this transfer.",
    "incorrect_account_holder_name": "The bank notified us that the bank account holder name on file is incorrect.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "invalid_account_number": "The routing number seems correct, but the account number is invalid.",
    "invalid_currency": "The bank was unable to process this payout because of its currency.",
    "no_account": "The bank account details on file are probably incorrect. No bank account could be located.",
}

# Stripe's test bank account numbers: payouts to them fail with these codes.
TEST_ACCOUNT_FAILURES: dict[str, str] = {
    "000111111116": "no_account",
    "000111111113": "account_closed",
    "000222222227": "insufficient_funds",
    "000333333335": "debit_not_authorized",
    "000444444440": "invalid_currency",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created INTEGER NOT NULL,
    status TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_kind_seq ON objects (kind, seq);
CREATE TABLE IF NOT EXISTS balances (currency TEXT PRIMARY KEY, available INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS payout_jobs (
    payout_id TEXT PRIMARY KEY,
    due_at REAL NOT NULL,
    fail_code TEXT
);
CREATE INDEX IF NOT EXISTS payout_jobs_due ON payout_jobs (due_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    in_flight INTEGER NOT NULL DEFAULT 0,
    duplicate INTEGER NOT NULL DEFAULT 0,
    delivered_at REAL,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (delivered_at, in_flight, due_at);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    params TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

IDEMPOTENCY_TTL_S = 24 * 3600  # Stripe forgets a key after 24 hours


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


class Bank:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.jobs_ready = threading.Event()  # wakes the payout lifecycle thread
        self.deliveries_ready = threading.Event()  # wakes the webhook dispatcher
        if config.db != ":memory:":
            Path(config.db).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(config.db, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._depth = 0
        with self.lock:
            self.db.executescript(_SCHEMA)
            with self.transaction():
                self._initialise()

    # --- plumbing --------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One SQLite transaction; nested uses join the outer one (the lock is held throughout)."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")
            finally:
                self._depth = 0

    def _initialise(self) -> None:
        for currency in self.config.currencies:
            self.db.execute("INSERT OR IGNORE INTO balances (currency, available) VALUES (?, 0)", (currency,))
        # Deliveries that were in flight when the process stopped are sent again: at least once.
        self.db.execute("UPDATE deliveries SET in_flight = 0 WHERE in_flight = 1 AND delivered_at IS NULL")
        self.db.execute("DELETE FROM idempotency WHERE created < ?", (time.time() - IDEMPOTENCY_TTL_S,))
        if self.db.execute("SELECT 1 FROM meta WHERE name = 'initialised'").fetchone() is None:
            for currency, amount in self.config.opening_balances.items():
                if currency in self.config.currencies and amount:
                    self._balance_change(
                        currency=currency, amount=amount, type_="adjustment", source=None, description="Opening balance"
                    )
            self.db.execute("INSERT INTO meta (name, value) VALUES ('initialised', ?)", (str(now()),))

    def _insert(self, kind: str, body: dict[str, Any], status: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO objects (id, kind, created, status, body) VALUES (?, ?, ?, ?, ?)",
            (body["id"], kind, body["created"], status, _dumps(body)),
        )

    def _update(self, body: dict[str, Any], status: str | None = None) -> None:
        self.db.execute("UPDATE objects SET body = ?, status = ? WHERE id = ?", (_dumps(body), status, body["id"]))

    def _get(self, kind: str, object_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT body FROM objects WHERE kind = ? AND id = ?", (kind, object_id)).fetchone()
        return None if row is None else json.loads(row["body"])

    def _list(self, kind: str, params: dict[str, Any], url: str, *, status: str | None = None) -> dict[str, Any]:
        """Newest first, as Stripe lists; ``starting_after`` pages to older objects, ``ending_before`` to newer."""
        limit = param_limit(params)
        starting_after = params.get("starting_after") or None
        ending_before = params.get("ending_before") or None
        where, args = ["kind = ?"], [kind]
        if status is not None:
            where.append("status = ?")
            args.append(status)
        order = "DESC"
        for cursor, op in ((starting_after, "<"), (ending_before, ">")):
            if cursor is None:
                continue
            row = self.db.execute("SELECT seq FROM objects WHERE kind = ? AND id = ?", (kind, cursor)).fetchone()
            if row is None:
                name = "starting_after" if cursor is starting_after else "ending_before"
                raise resource_missing("object", cursor, param=name)
            where.append(f"seq {op} ?")
            args.append(row["seq"])
            if op == ">":
                order = "ASC"
        rows = self.db.execute(
            f"SELECT body FROM objects WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT ?",
            (*args, limit + 1),
        ).fetchall()
        data = [json.loads(row["body"]) for row in rows[:limit]]
        if order == "ASC":
            data.reverse()
        return list_object(url, data, len(rows) > limit)

    def _balance_change(
        self, *, currency: str, amount: int, type_: str, source: str | None, description: str | None
    ) -> dict[str, Any]:
        created = now()
        txn = {
            "id": new_id("txn"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": created,
            "created": created,
            "currency": currency,
            "description": description,
            "exchange_rate": None,
            "fee": 0,
            "fee_details": [],
            "net": amount,
            "reporting_category": type_,
            "source": source,
            "status": "available",
            "type": type_,
        }
        self.db.execute("UPDATE balances SET available = available + ? WHERE currency = ?", (amount, currency))
        self._insert("balance_transaction", txn, status=type_)
        return txn

    def _event(
        self,
        type_: str,
        obj: dict[str, Any],
        *,
        previous: dict[str, Any] | None = None,
        request: dict[str, Any] | None = None,
    ) -> None:
        config = self.config
        delivered = bool(config.webhook_url) and ("*" in config.webhook_events or type_ in config.webhook_events)
        data: dict[str, Any] = {"object": obj}
        if previous is not None:
            data["previous_attributes"] = previous
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1 if delivered else 0,
            "request": request or {"id": None, "idempotency_key": None},
            "type": type_,
        }
        self._insert("event", event, status=type_)
        if delivered:
            self._delivery_schedule(event["id"])

    def _delivery_schedule(self, event_id: str, *, duplicate: bool = False) -> None:
        delay_s = 0.0
        shuffle_ms = self.config.faults.webhook_shuffle_ms
        if shuffle_ms:
            delay_s += random.uniform(0, shuffle_ms / 1000)
        self.db.execute(
            "INSERT INTO deliveries (event_id, due_at, duplicate) VALUES (?, ?, ?)",
            (event_id, time.time() + delay_s, int(duplicate)),
        )
        self.deliveries_ready.set()

    # --- idempotency -----------------------------------------------------------------------

    @staticmethod
    def params_fingerprint(params: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()

    def idempotency_lookup(self, key: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM idempotency WHERE key = ?", (key,)).fetchone()

    def idempotency_save(
        self, *, key: str, method: str, path: str, params: dict[str, Any], status: int, body: dict[str, Any]
    ) -> None:
        self.db.execute(
            "INSERT INTO idempotency (key, method, path, params, status, body, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, method, path, self.params_fingerprint(params), status, _dumps(body), time.time()),
        )

    # --- balance ---------------------------------------------------------------------------

    def balance(self) -> dict[str, Any]:
        rows = self.db.execute("SELECT currency, available FROM balances ORDER BY currency").fetchall()
        return {
            "object": "balance",
            "available": [
                {
                    "amount": row["available"],
                    "currency": row["currency"],
                    "source_types": {"bank_account": row["available"]},
                }
                for row in rows
            ],
            "pending": [
                {"amount": 0, "currency": row["currency"], "source_types": {"bank_account": 0}} for row in rows
            ],
            "livemode": False,
        }

    def balance_transaction_retrieve(self, txn_id: str) -> dict[str, Any]:
        return self._get("balance_transaction", txn_id) or self._raise_missing("balance transaction", txn_id)

    def balance_transactions_list(self, params: dict[str, Any]) -> dict[str, Any]:
        params_allow(params, {"limit", "starting_after", "ending_before", "type"})
        return self._list("balance_transaction", params, "/v1/balance_transactions", status=params.get("type") or None)

    @staticmethod
    def _raise_missing(kind: str, object_id: str) -> dict[str, Any]:
        raise resource_missing(kind, object_id)

    # --- external accounts (the enterprises' bank accounts) --------------------------------

    def _account_check(self, account: str) -> None:
        if account != self.config.account_id:
            raise resource_missing("account", account)

    def bank_account_create(self, account: str, params: dict[str, Any]) -> dict[str, Any]:
        self._account_check(account)
        params_allow(params, {"external_account", "default_for_currency", "metadata"})
        details = param_required(params, "external_account")
        if not isinstance(details, dict):
            # A token (btok_…) is how Stripe.js hands over details; banksim takes the details themselves.
            raise StripeError(
                400, "Tokens are not supported; pass external_account[...] details.", param="external_account"
            )
        allowed = {
            "object",
            "country",
            "currency",
            "account_holder_name",
            "account_holder_type",
            "routing_number",
            "account_number",
        }
        for name in details:
            if name not in allowed:
                raise StripeError(
                    400,
                    f"Received unknown parameter: external_account[{name}]",
                    code="parameter_unknown",
                    param=f"external_account[{name}]",
                )
        if details.get("object", "bank_account") != "bank_account":
            raise StripeError(400, "Only bank accounts are supported.", param="external_account[object]")
        nested = {f"external_account[{k}]": v for k, v in details.items()}
        account_number = param_string(nested, "external_account[account_number]", max_length=34, required=True)
        currency = param_currency(nested, self.config.currencies, "external_account[currency]")
        country = param_string(nested, "external_account[country]", max_length=2, required=True)
        holder_type = param_choice(nested, "external_account[account_holder_type]", ("individual", "company"))
        routing = param_string(nested, "external_account[routing_number]", max_length=34)
        holder_name = param_string(nested, "external_account[account_holder_name]", max_length=200)
        default_for_currency = params.get("default_for_currency") in {"true", "1"}
        metadata = param_metadata(params)
        assert account_number is not None and country is not None
        fingerprint = hashlib.sha256(f"{routing or ''}/{account_number}".encode()).hexdigest()[:16]
        has_default = any(ba["default_for_currency"] for ba in self._bank_accounts(currency))
        bank_account = {
            "id": new_id("ba"),
            "object": "bank_account",
            "account": account,
            "account_holder_name": holder_name,
            "account_holder_type": holder_type or "company",
            "account_type": None,
            "available_payout_methods": ["standard"],
            "bank_name": "BANKSIM TEST BANK",
            "country": country.upper(),
            "created": now(),
            "currency": currency,
            "default_for_currency": default_for_currency or not has_default,
            "fingerprint": fingerprint,
            "last4": account_number[-4:],
            "metadata": metadata,
            "routing_number": routing,
            "status": "new",
        }
        with self.transaction():
            if bank_account["default_for_currency"] and has_default:
                for other in self._bank_accounts(currency):
                    if other["default_for_currency"]:
                        other["default_for_currency"] = False
                        self._update(other, status=other["currency"])
            self._insert("bank_account", bank_account, status=currency)
            # The full number stays inside the bank: the object shows last4 only, as Stripe's does.
            self.db.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?)", (f"account_number:{bank_account['id']}", account_number)
            )
        return bank_account

    def _bank_accounts(self, currency: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT body FROM objects WHERE kind = 'bank_account' AND status = ? ORDER BY seq", (currency,)
        ).fetchall()
        return [json.loads(row["body"]) for row in rows]

    def bank_account_retrieve(self, account: str, bank_account_id: str) -> dict[str, Any]:
        self._account_check(account)
        return self._get("bank_account", bank_account_id) or self._raise_missing("external account", bank_account_id)

    def bank_accounts_list(self, account: str, params: dict[str, Any]) -> dict[str, Any]:
        self._account_check(account)
        params_allow(params, {"limit", "starting_after", "ending_before", "object"})
        return self._list("bank_account", params, f"/v1/accounts/{account}/external_accounts")

    # --- payouts ---------------------------------------------------------------------------

    def payout_create(self, params: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        params_allow(
            params,
            {
                "amount",
                "currency",
                "destination",
                "description",
                "metadata",
                "statement_descriptor",
                "method",
                "source_type",
            },
        )
        amount = param_positive_int(params, "amount")
        currency = param_currency(params, self.config.currencies)
        description = param_string(params, "description", max_length=1000)
        descriptor = param_string(params, "statement_descriptor", max_length=22)
        metadata = param_metadata(params)
        method = param_choice(params, "method", ("standard", "instant")) or "standard"
        if method == "instant":
            raise StripeError(
                400,
                "Instant payouts are not supported by this bank.",
                code="instant_payouts_unsupported",
                param="method",
            )
        source_type = param_choice(params, "source_type", ("bank_account", "card", "fpx")) or "bank_account"
        destination_id = param_string(params, "destination", max_length=255)
        with self.transaction():
            if destination_id is None:
                defaults = [ba for ba in self._bank_accounts(currency) if ba["default_for_currency"]]
                if not defaults:
                    raise StripeError(
                        400, f"You don't have any external accounts in that currency ({currency}).", param="currency"
                    )
                destination = defaults[0]
            else:
                destination = self._get("bank_account", destination_id)
                if destination is None:
                    raise resource_missing("external account", destination_id, param="destination")
            if destination["currency"] != currency:
                raise StripeError(
                    400,
                    f"The currency of the bank account ({destination['currency']}) does not match "
                    f"the payout currency ({currency}).",
                    param="destination",
                )
            available = self.db.execute("SELECT available FROM balances WHERE currency = ?", (currency,)).fetchone()[0]
            if available < amount:
                raise StripeError(
                    400,
                    f"You have insufficient funds in your account for this payout "
                    f"(available: {available} {currency}, requested: {amount}).",
                    code="balance_insufficient",
                    param="amount",
                )
            created = now()
            faults = self.config.faults
            number_row = self.db.execute(
                "SELECT value FROM meta WHERE name = ?", (f"account_number:{destination['id']}",)
            ).fetchone()
            fail_code = TEST_ACCOUNT_FAILURES.get(number_row["value"] if number_row else "")
            if faults.fail_payouts and random.random() < faults.fail_payouts_rate:
                fail_code = faults.fail_payouts
            payout_id = new_id("po")
            txn = self._balance_change(
                currency=currency, amount=-amount, type_="payout", source=payout_id, description=description
            )
            settle_s = (faults.transit_delay_ms + faults.settle_delay_ms) / 1000
            payout = {
                "id": payout_id,
                "object": "payout",
                "amount": amount,
                "arrival_date": int(created + settle_s),
                "automatic": False,
                "balance_transaction": txn["id"],
                "created": created,
                "currency": currency,
                "description": description,
                "destination": destination["id"],
                "failure_balance_transaction": None,
                "failure_code": None,
                "failure_message": None,
                "livemode": False,
                "metadata": metadata,
                "method": method,
                "original_payout": None,
                "reconciliation_status": "not_applicable",
                "reversed_by": None,
                "source_type": source_type,
                "statement_descriptor": descriptor,
                "status": "pending",
                "type": "bank_account",
            }
            self._insert("payout", payout, status="pending")
            self.db.execute(
                "INSERT INTO payout_jobs (payout_id, due_at, fail_code) VALUES (?, ?, ?)",
                (payout_id, time.time() + faults.transit_delay_ms / 1000, fail_code),
            )
            self._event("payout.created", payout, request=request)
        self.jobs_ready.set()
        return payout

    def payout_retrieve(self, payout_id: str) -> dict[str, Any]:
        return self._get("payout", payout_id) or self._raise_missing("payout", payout_id)

    def payouts_list(self, params: dict[str, Any]) -> dict[str, Any]:
        params_allow(params, {"limit", "starting_after", "ending_before", "status"})
        status = param_choice(params, "status", ("pending", "in_transit", "paid", "failed", "canceled"))
        return self._list("payout", params, "/v1/payouts", status=status)

    def payout_cancel(self, payout_id: str, request: dict[str, Any]) -> dict[str, Any]:
        with self.transaction():
            payout = self.payout_retrieve(payout_id)
            if payout["status"] != "pending":
                raise StripeError(400, "Payouts can only be canceled while they are pending.", param="id")
            txn = self._balance_change(
                currency=payout["currency"],
                amount=payout["amount"],
                type_="payout_cancel",
                source=payout_id,
                description="Payout canceled",
            )
            payout.update(status="canceled", failure_balance_transaction=txn["id"])
            self._update(payout, status="canceled")
            self.db.execute("DELETE FROM payout_jobs WHERE payout_id = ?", (payout_id,))
            self._event("payout.updated", payout, previous={"status": "pending"}, request=request)
            self._event("payout.canceled", payout, request=request)
        return payout

    def payouts_advance(self) -> float | None:
        """Move every payout whose time has come one step; return when the next one is due."""
        with self.transaction():
            moment = time.time()
            jobs = self.db.execute(
                "SELECT payout_id, fail_code FROM payout_jobs WHERE due_at <= ? ORDER BY due_at LIMIT 500", (moment,)
            ).fetchall()
            for job in jobs:
                self._payout_step(job["payout_id"], job["fail_code"])
            row = self.db.execute("SELECT MIN(due_at) FROM payout_jobs").fetchone()
        return row[0]

    def _payout_step(self, payout_id: str, fail_code: str | None) -> None:
        payout = self.payout_retrieve(payout_id)
        previous = {"status": payout["status"]}
        if payout["status"] == "pending":
            payout["status"] = "in_transit"
            self._update(payout, status="in_transit")
            due = time.time() + self.config.faults.settle_delay_ms / 1000
            self.db.execute("UPDATE payout_jobs SET due_at = ? WHERE payout_id = ?", (due, payout_id))
            self._event("payout.updated", payout, previous=previous)
            return
        self.db.execute("DELETE FROM payout_jobs WHERE payout_id = ?", (payout_id,))
        if fail_code:
            txn = self._balance_change(
                currency=payout["currency"],
                amount=payout["amount"],
                type_="payout_failure",
                source=payout_id,
                description=f"Payout failed: {fail_code}",
            )
            payout.update(
                status="failed",
                failure_code=fail_code,
                failure_message=FAILURE_MESSAGES.get(fail_code, "The bank could not process this payout."),
                failure_balance_transaction=txn["id"],
            )
            self._update(payout, status="failed")
            self._event("payout.updated", payout, previous=previous)
            self._event("payout.failed", payout)
        else:
            payout["status"] = "paid"
            self._update(payout, status="paid")
            self._event("payout.updated", payout, previous=previous)
            self._event("payout.paid", payout)

    def payout_return(self, payout_id: str, params: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        """Test helper: the beneficiary's bank sends a paid payout back (days later, in real life).

        As Stripe does for a returned payout: the payout moves paid → failed
        with a failure code, its amount is credited back to the balance (a
        ``payout_failure`` balance transaction), and ``payout.failed`` is sent
        after the ``payout.paid`` already sent.
        """
        params_allow(params, {"failure_code"})
        code = param_string(params, "failure_code", max_length=64) or "account_closed"
        if code not in FAILURE_MESSAGES:
            raise StripeError(400, f"Invalid failure_code: {code}", code="parameter_invalid", param="failure_code")
        with self.transaction():
            payout = self.payout_retrieve(payout_id)
            if payout["status"] != "paid":
                raise StripeError(
                    400,
                    f"Only a paid payout can be returned; payout {payout_id} is {payout['status']}.",
                    code="payout_not_paid",
                    param="id",
                )
            txn = self._balance_change(
                currency=payout["currency"],
                amount=payout["amount"],
                type_="payout_failure",
                source=payout_id,
                description=f"Payout returned: {code}",
            )
            payout.update(
                status="failed",
                failure_code=code,
                failure_message=FAILURE_MESSAGES[code],
                failure_balance_transaction=txn["id"],
            )
            self._update(payout, status="failed")
            self._event("payout.updated", payout, previous={"status": "paid"}, request=request)
            self._event("payout.failed", payout, request=request)
        return payout

    # --- inbound wires (test helper: fiat arriving for a virtual account reference) --------

    def inbound_wire_create(self, params: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        params_allow(params, {"amount", "currency", "reference", "sender_name", "description", "metadata"})
        amount = param_positive_int(params, "amount")
        currency = param_currency(params, self.config.currencies)
        reference = param_string(params, "reference", max_length=140)
        sender_name = param_string(params, "sender_name", max_length=140)
        description = param_string(params, "description", max_length=1000)
        metadata = param_metadata(params)
        wire_id = new_id("iw")
        with self.transaction():
            txn = self._balance_change(
                currency=currency, amount=amount, type_="inbound_wire", source=wire_id, description=reference
            )
            wire = {
                "id": wire_id,
                "object": "inbound_wire",
                "account": self.config.account_id,
                "amount": amount,
                "balance_transaction": txn["id"],
                "created": txn["created"],
                "currency": currency,
                "description": description,
                "livemode": False,
                "metadata": metadata,
                "reference": reference,
                "sender_name": sender_name,
                "status": "succeeded",
            }
            self._insert("inbound_wire", wire, status=currency)
            self._event("inbound_wire.received", wire, request=request)
        return wire

    def inbound_wire_retrieve(self, wire_id: str) -> dict[str, Any]:
        return self._get("inbound_wire", wire_id) or self._raise_missing("inbound wire", wire_id)

    def inbound_wires_list(self, params: dict[str, Any]) -> dict[str, Any]:
        params_allow(params, {"limit", "starting_after", "ending_before"})
        return self._list("inbound_wire", params, "/v1/inbound_wires")

    # --- events and their delivery ---------------------------------------------------------

    def event_retrieve(self, event_id: str) -> dict[str, Any]:
        return self._get("event", event_id) or self._raise_missing("event", event_id)

    def events_list(self, params: dict[str, Any]) -> dict[str, Any]:
        params_allow(params, {"limit", "starting_after", "ending_before", "type"})
        return self._list("event", params, "/v1/events", status=params.get("type") or None)

    def deliveries_claim(self, limit: int) -> tuple[list[tuple[int, str, int]], float | None]:
        """Due deliveries (id, event body, attempts so far), marked in flight; and when the next is due."""
        with self.transaction():
            moment = time.time()
            rows = self.db.execute(
                "SELECT d.id, d.attempts, o.body FROM deliveries d JOIN objects o ON o.id = d.event_id "
                "WHERE d.delivered_at IS NULL AND d.in_flight = 0 AND d.due_at <= ? ORDER BY d.due_at LIMIT ?",
                (moment, limit),
            ).fetchall()
            for row in rows:
                self.db.execute("UPDATE deliveries SET in_flight = 1 WHERE id = ?", (row["id"],))
            nxt = self.db.execute(
                "SELECT MIN(due_at) FROM deliveries WHERE delivered_at IS NULL AND in_flight = 0"
            ).fetchone()[0]
        return [(row["id"], row["body"], row["attempts"]) for row in rows], nxt

    def delivery_record(self, delivery_id: int, *, ok: bool, status: int | None, error: str | None) -> None:
        config = self.config
        with self.transaction():
            row = self.db.execute(
                "SELECT event_id, attempts, duplicate FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            attempts = row["attempts"] + 1
            if ok:
                self.db.execute(
                    "UPDATE deliveries SET in_flight = 0, attempts = ?, delivered_at = ?, last_status = ?, "
                    "last_error = NULL WHERE id = ?",
                    (attempts, time.time(), status, delivery_id),
                )
                if not row["duplicate"] and random.random() < config.faults.webhook_duplicate_rate:
                    self._delivery_schedule(row["event_id"], duplicate=True)  # at least once: sometimes twice
                return
            backoff_ms = min(config.webhook_retry_base_ms * 2 ** (attempts - 1), config.webhook_retry_max_ms)
            backoff_ms *= random.uniform(0.8, 1.2)  # jitter, so that a recovering receiver is not stampeded
            self.db.execute(
                "UPDATE deliveries SET in_flight = 0, attempts = ?, due_at = ?, last_status = ?, last_error = ? "
                "WHERE id = ?",
                (attempts, time.time() + backoff_ms / 1000, status, error, delivery_id),
            )
        self.deliveries_ready.set()

    def deliveries_summary(self) -> dict[str, Any]:
        row = self.db.execute(
            "SELECT COUNT(*) AS total, SUM(delivered_at IS NOT NULL) AS delivered, SUM(attempts) AS attempts "
            "FROM deliveries"
        ).fetchone()
        return {
            "object": "webhook_deliveries",
            "total": row["total"],
            "delivered": row["delivered"] or 0,
            "pending": row["total"] - (row["delivered"] or 0),
            "attempts": row["attempts"] or 0,
        }

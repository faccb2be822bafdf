"""Fixtures for the ledger tests: accounts by name, transfers, and a picture of the whole ledger."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import connection

from settlement.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from settlement.ledger.selectors import platform_account, wallet_for
from settlement.ledger.services import PostResult, ledger_post, legs_debit_credit

_keys = itertools.count(1)


def new_key(prefix: str = "test") -> str:
    return f"{prefix}:{next(_keys)}"


@dataclass(frozen=True)
class LedgerState:
    """Everything a refused post must leave as it was."""

    entries: int
    postings: int
    balances: dict[int, int]


def ledger_state() -> LedgerState:
    return LedgerState(
        entries=JournalEntry.objects.count(),
        postings=Posting.objects.count(),
        balances=dict(Account.objects.values_list("id", "balance")),
    )


def postings_sum(account: Account) -> int:
    """The sum of the account's postings, straight from SQL."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(SUM(amount), 0) FROM settlement_posting WHERE account_id = %s", [account.id])
        return int(cursor.fetchone()[0])


def balance_of(account: Account) -> int:
    return Account.objects.values_list("balance", flat=True).get(pk=account.pk)


@pytest.fixture
def state() -> Callable[[], LedgerState]:
    return ledger_state


@pytest.fixture
def reserve(platform) -> Callable[[str], Account]:
    return lambda currency: platform_account(kind=AccountKind.RESERVE, currency=currency)


@pytest.fixture
def wallet(platform) -> Callable[..., Account]:
    return lambda enterprise, currency="HKD": wallet_for(enterprise=enterprise, currency=currency)


@pytest.fixture
def transfer() -> Callable[..., PostResult]:
    """Post a two-leg transfer from one account to another (minor units)."""

    def do_transfer(payer: Account, payee: Account, minor: int, *, key: str | None = None) -> PostResult:
        return ledger_post(
            idempotency_key=key or new_key("transfer"),
            kind=EntryKind.TRANSFER,
            legs=legs_debit_credit(debit=payer, credit=payee, minor=minor),
        )

    return do_transfer

"""Fixtures shared by the whole suite. The suite runs on PostgreSQL (see Makefile)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from config import money
from corporates.models import Enterprise
from corporates.services import enterprise_approve
from settlement.ledger.models import Account, AccountKind, EntryKind
from settlement.ledger.selectors import platform_account, wallet_for
from settlement.ledger.services import ledger_post, legs_debit_credit, platform_accounts_open
from tests.factories import EnterpriseFactory


@pytest.fixture
def platform(db) -> list[Account]:
    """The platform's reserve, in-transit, FX inventory and clearing accounts in every currency."""
    return platform_accounts_open()


@pytest.fixture
def make_enterprise(platform) -> Callable[..., Enterprise]:
    """An approved enterprise with its three wallets."""

    def make(**kwargs) -> Enterprise:
        return enterprise_approve(enterprise=EnterpriseFactory(**kwargs))

    return make


@pytest.fixture
def mint(platform) -> Callable[..., Account]:
    """Mint tokens into an enterprise's wallet (or any credit-normal account) through the ledger."""
    counter = {"n": 0}

    def do_mint(target: Enterprise | Account, amount: str, currency: str = "HKD") -> Account:
        account = target if isinstance(target, Account) else wallet_for(enterprise=target, currency=currency)
        counter["n"] += 1
        ledger_post(
            idempotency_key=f"test-mint:{account.id}:{counter['n']}",
            kind=EntryKind.MINT,
            legs=legs_debit_credit(
                debit=platform_account(kind=AccountKind.RESERVE, currency=account.currency),
                credit=account,
                minor=money.to_minor(money.parse_amount(amount, account.currency), account.currency),
            ),
        )
        account.refresh_from_db()
        return account

    return do_mint


@pytest.fixture(params=["function", "orm"])
def ledger_path(request, settings) -> str:
    """Run a test through both posting paths: PostgreSQL's function and the portable ORM path."""
    settings.LEDGER_POST_PATH = "auto" if request.param == "function" else "orm"
    return request.param


@pytest.fixture
def admin_client(db, admin_user):
    """pytest-django's admin_client, past the back office's TOTP two-factor (corporates/admin_site.py).

    Admin refuses staff on a password alone; tests/two_factor.py does the same for any other staff client.
    """
    from django.test import Client

    from tests.two_factor import force_login_verified

    return force_login_verified(Client(), admin_user)

"""Fixtures of the mint/redeem/reserves tests: banksim as a real process, its real signed events.

banksim delivers its webhooks to a recording receiver (tests/banksim/harness.py);
a test hands each captured delivery, byte for byte with the bank's own
Stripe-Signature, to our receiving view through Django's test client. So the
signature, the replay window, the view and the services all run for real, and
a test decides when (and how often, in which order) each event arrives.

Import the fixtures into a test module:
``from tests.settlement.mintredeem import *  # noqa: F403``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from config import money
from config.celery import app as celery_app
from corporates.models import BankAccount, BankAccountStatus, Enterprise, MemberRole
from corporates.onboarding.banking import bank_account_register, bank_account_verify
from settlement.deposits.services import deposit_reference_for
from settlement.ledger.selectors import ledger_verify, wallet_for
from settlement.redemptions.models import Redemption
from settlement.reserves import reserves_reconcile
from tests.banksim.conftest import banksim_factory, webhook_receiver  # noqa: F401
from tests.banksim.harness import Banksim, Delivery, WebhookReceiver
from tests.factories import MembershipFactory

__all__ = [
    "Rails",
    "assert_books_clean",
    "banksim_factory",
    "eager_tasks",
    "rails",
    "redeemer",
    "webhook_receiver",
]

_keys = itertools.count(1)


class Rails:
    """banksim, the receiver of its webhooks, and the way to hand those to our view."""

    def __init__(self, bank: Banksim, receiver: WebhookReceiver) -> None:
        self.bank = bank
        self.receiver = receiver
        self.client = Client()

    # --- events ---------------------------------------------------------------------

    def wait_event(self, type_: str, object_id: str, timeout: float = 30) -> Delivery:
        """The bank's (first) delivery of ``type_`` about ``object_id``."""

        def match(delivery: Delivery) -> bool:
            event = delivery.event
            return event["type"] == type_ and event["data"]["object"]["id"] == object_id

        deliveries = self.receiver.wait_for(lambda ds: any(match(d) for d in ds), timeout=timeout)
        return next(d for d in deliveries if match(d))

    def deliver(self, delivery: Delivery, *, body: bytes | None = None, signature: str | None = None):
        """POST a captured delivery to our webhook view, as the bank sent it (or tampered with)."""
        return self.client.post(
            "/webhooks/bank/",
            data=delivery.body if body is None else body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=delivery.headers.get("Stripe-Signature", "") if signature is None else signature,
        )

    # --- money in -------------------------------------------------------------------------

    def wire(self, *, amount: str, currency: str = "HKD", reference: str | None) -> dict[str, Any]:
        """The bank receives a wire (test helper); returns the wire object."""
        minor = money.to_minor(money.parse_amount(amount, currency), currency)
        with self.bank.client() as client:
            wire = client.test_inbound_wire(
                amount_minor=minor,
                currency=currency,
                reference=reference,
                idempotency_key=f"test-wire-{next(_keys)}",
                sender_name="Test Sender Ltd",
            )
        return {"id": wire.id, "amount": wire.amount_minor, "currency": wire.currency}

    def fund(self, enterprise: Enterprise, amount: str, currency: str = "HKD") -> Delivery:
        """Mint through the real path: a wire with the enterprise's reference, its event, our view."""
        reference = deposit_reference_for(enterprise=enterprise, currency=currency).reference
        wire = self.wire(amount=amount, currency=currency, reference=reference)
        delivery = self.wait_event("inbound_wire.received", wire["id"])
        response = self.deliver(delivery)
        assert response.status_code == 200, response.content
        return delivery

    # --- money out --------------------------------------------------------------------------

    def payout_outcome(self, redemption: Redemption, timeout: float = 30) -> Delivery:
        """The bank's payout.paid or payout.failed for the redemption's payout."""
        redemption.refresh_from_db()
        assert redemption.payout_id, f"{redemption.public_id} has no payout"

        def final(delivery: Delivery) -> bool:
            event = delivery.event
            return event["type"] in ("payout.paid", "payout.failed") and (
                event["data"]["object"]["id"] == redemption.payout_id
            )

        deliveries = self.receiver.wait_for(lambda ds: any(final(d) for d in ds), timeout=timeout)
        return next(d for d in deliveries if final(d))

    def settle(self, redemption: Redemption) -> Redemption:
        response = self.deliver(self.payout_outcome(redemption))
        assert response.status_code == 200, response.content
        redemption.refresh_from_db()
        return redemption

    def custodian(self, currency: str = "HKD") -> int:
        with self.bank.client() as client:
            return client.balance_retrieve().available.get(currency, 0)

    def payouts(self) -> list:
        with self.bank.client() as client:
            return list(client.payouts_iter())


@pytest.fixture
def rails(banksim_factory, webhook_receiver, settings) -> Iterator[Rails]:  # noqa: F811
    """banksim with an empty custodian (every fiat unit arrives by wire), webhooks to a recorder."""
    bank = banksim_factory(webhook_url=webhook_receiver.url, opening_balances={})
    settings.BANK_RAILS_BASE_URL = bank.url
    settings.BANK_RAILS_SECRET_KEY = bank.secret_key
    settings.BANK_RAILS_WEBHOOK_SECRET = bank.webhook_secret
    settings.BANK_RAILS_ACCOUNT_ID = bank.account_id
    settings.BANK_RAILS_RETRY_BACKOFF_S = 0.01
    settings.BANK_RAILS_TIMEOUT_S = 3
    settings.RESERVES_RECONCILE_CONFIRM_S = 0
    yield Rails(bank, webhook_receiver)


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Celery tasks run in-process when queued (the on-commit payout of an approval)."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


class Redeemer:
    """An approved enterprise with a maker, a checker, and a verified bank account per currency."""

    def __init__(self, enterprise: Enterprise) -> None:
        self.enterprise = enterprise
        self.maker = MembershipFactory(enterprise=enterprise, role=MemberRole.MAKER).user
        self.checker = MembershipFactory(enterprise=enterprise, role=MemberRole.CHECKER).user
        self.accounts: dict[str, BankAccount] = {}

    def account(self, currency: str = "HKD", number: str | None = None) -> BankAccount:
        key = f"{currency}:{number}"
        if key not in self.accounts:
            account = bank_account_register(
                enterprise=self.enterprise,
                holder_name=self.enterprise.legal_name,
                bank_name="Bank of Test",
                account_number=number or f"012-{self.enterprise.pk:06d}-{len(self.accounts) + 1:03d}",
                currency=currency,
            )
            self.accounts[key] = bank_account_verify(bank_account=account)
            assert self.accounts[key].status == BankAccountStatus.VERIFIED
        return self.accounts[key]

    def wallet(self, currency: str = "HKD") -> int:
        return wallet_for(enterprise=self.enterprise, currency=currency).balance


@pytest.fixture
def redeemer(make_enterprise) -> Callable[..., Redeemer]:
    return lambda **kwargs: Redeemer(make_enterprise(**kwargs))


def assert_books_clean() -> None:
    """The closing check of every test: the ledger's invariants hold and the custodian agrees."""
    report = ledger_verify()
    assert report.ok, report.breaches
    result = reserves_reconcile(confirm_after_s=0)
    assert result.snapshot.custodian_error is None, result.snapshot.custodian_error
    differences = {c: p.difference for c, p in result.snapshot.currencies.items() if p.difference}
    assert not differences, differences
    assert result.clean


def approve(party: Redeemer, amount: str) -> Redemption:
    """Request below the threshold (approved at once: wallet → in transit); the on-commit payout
    dispatch runs only where the test commits (transaction=True) or captures on-commit callbacks."""
    from settlement.redemptions.services import Actor, redemption_request

    return redemption_request(
        enterprise=party.enterprise,
        amount=amount,
        currency="HKD",
        bank_account=party.account("HKD"),
        actor=Actor(user=party.maker),
    )


def minor(amount: str, currency: str = "HKD") -> int:
    return money.to_minor(Decimal(amount), currency)

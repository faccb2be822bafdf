"""The ledger's batch-posting path (settlement.ledger.batch), on both paths: PostgreSQL's function and the ORM."""

from __future__ import annotations

import pytest
from django.db import transaction

from settlement.ledger.batch import Transfer, ledger_post_transfer_list, ledger_post_transfers
from settlement.ledger.models import EntryKind, JournalEntry, Posting
from settlement.ledger.selectors import ledger_verify, wallet_for
from settlement.ledger.services import (
    AccountFrozen,
    IdempotencyConflict,
    InsufficientFunds,
    Leg,
    account_freeze,
    content_hash,
    ledger_post,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def wallets(make_enterprise, mint):
    a, b, c = make_enterprise(), make_enterprise(), make_enterprise()
    mint(a, "100.00")
    return [wallet_for(enterprise=e, currency="HKD") for e in (a, b, c)]


def post(transfers):
    with transaction.atomic():
        return ledger_post_transfer_list(kind=EntryKind.NETTING, transfers=transfers, memo="test batch")


def balances(accounts):
    for account in accounts:
        account.refresh_from_db()
    return [account.balance for account in accounts]


def test_many_transfers_post_as_one_entry_each(wallets, ledger_path):
    a, b, c = wallets
    result = post([Transfer("k1", a.id, b.id, "HKD", 6_000), Transfer("k2", b.id, c.id, "HKD", 2_500)])

    assert (result.created, result.replayed) == (2, 0)
    assert balances(wallets) == [4_000, 3_500, 2_500]
    entry = JournalEntry.objects.get(idempotency_key="k1")
    assert sorted(Posting.objects.filter(entry=entry).values_list("amount", flat=True)) == [-6_000, 6_000]
    assert entry.public_id.startswith("je_") and entry.memo == "test batch"
    assert ledger_verify().ok


def test_the_batch_hash_is_the_single_entry_hash_so_keys_replay_across_paths(wallets, ledger_path):
    a, b, _ = wallets
    post([Transfer("same", a.id, b.id, "HKD", 700)])
    expected = content_hash(
        kind=EntryKind.NETTING, legs=[Leg(a.id, "HKD", 700), Leg(b.id, "HKD", -700)], reverses_id=None
    )
    assert JournalEntry.objects.get(idempotency_key="same").content_hash == expected

    replay = ledger_post(
        idempotency_key="same", kind=EntryKind.NETTING, legs=[Leg(b.id, "HKD", -700), Leg(a.id, "HKD", 700)]
    )
    assert replay.created is False


def test_a_replayed_batch_posts_nothing_twice(wallets, ledger_path):
    a, b, c = wallets
    post([Transfer("r1", a.id, b.id, "HKD", 1_000)])

    result = post([Transfer("r1", a.id, b.id, "HKD", 1_000), Transfer("r2", a.id, c.id, "HKD", 1_000)])

    assert (result.created, result.replayed) == (1, 1)
    assert balances(wallets) == [8_000, 1_000, 1_000]


def test_a_key_with_other_content_refuses_the_whole_batch(wallets, ledger_path):
    a, b, c = wallets
    post([Transfer("c1", a.id, b.id, "HKD", 1_000)])
    with pytest.raises(IdempotencyConflict):
        post([Transfer("c2", a.id, c.id, "HKD", 5), Transfer("c1", a.id, b.id, "HKD", 999)])
    assert not JournalEntry.objects.filter(idempotency_key="c2").exists()
    assert balances(wallets) == [9_000, 1_000, 0]


def test_no_balance_goes_below_zero_and_a_refusal_writes_nothing(wallets, ledger_path):
    a, b, c = wallets
    entries = JournalEntry.objects.count()
    with transaction.atomic():
        with pytest.raises(InsufficientFunds) as caught:
            ledger_post_transfer_list(
                kind=EntryKind.NETTING,
                transfers=[Transfer("i1", a.id, b.id, "HKD", 6_000), Transfer("i2", a.id, c.id, "HKD", 4_001)],
            )
        # The caller's transaction is still usable.
        assert JournalEntry.objects.count() == entries
    assert caught.value.account_id == a.id
    assert balances(wallets) == [10_000, 0, 0]


def test_a_payer_may_spend_what_the_same_batch_brings_it(wallets, ledger_path):
    a, b, c = wallets
    post([Transfer("f1", a.id, b.id, "HKD", 10_000), Transfer("f2", b.id, c.id, "HKD", 10_000)])
    assert balances(wallets) == [0, 0, 10_000]


def test_a_frozen_account_is_not_debited(wallets, ledger_path):
    a, b, _ = wallets
    account_freeze(account=a)
    with pytest.raises(AccountFrozen):
        post([Transfer("z1", a.id, b.id, "HKD", 1)])


@pytest.mark.django_db(transaction=True)
def test_the_batch_path_requires_the_callers_transaction(wallets):
    a, b, _ = wallets
    with pytest.raises(RuntimeError):
        ledger_post_transfers(kind=EntryKind.NETTING, source_sql="SELECT 'x', 1, 2, 'HKD', 1, NULL")

"""The ledger under real concurrency: real threads, real PostgreSQL connections, committed transactions.

Each test runs on both posting paths. What must hold whatever the
interleaving: no deadlock or serialization failure reaches the caller (the
service retries those), no balance goes below zero, no update is lost (every
wallet ends exactly where the successful transfers put it), every currency is
conserved, and verify_ledger is clean afterwards.
"""

from __future__ import annotations

import io
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from settlement.ledger.models import Account, AccountKind, EntryKind, JournalEntry
from settlement.ledger.selectors import ledger_verify
from settlement.ledger.services import (
    EntryAlreadyReversed,
    IdempotencyConflict,
    InsufficientFunds,
    Leg,
    PostResult,
    ledger_post,
    ledger_reverse,
    legs_debit_credit,
)

# available_apps: the flush after each test truncates only the tables these
# tests touch, not the whole schema (the flush was most of their runtime).
pytestmark = pytest.mark.django_db(
    transaction=True, available_apps=["corporates", "settlement", "django.contrib.auth", "django.contrib.contenttypes"]
)

THREADS = 16


def run_in_threads(
    count: int, work: Callable[[int], object], *, barriers: tuple[threading.Barrier, ...] = ()
) -> tuple[list[object], list[BaseException]]:
    """Run ``work(i)`` in ``count`` threads; return their results and every exception they raised.

    A thread that fails breaks ``barriers``, so that the others stop waiting
    for it and the test fails instead of hanging.
    """
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)
            for barrier in barriers:
                barrier.abort()
        finally:
            # Each thread has its own connection; leave none open behind the test.
            connection.close()

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    return results, errors


def new_barrier() -> threading.Barrier:
    return threading.Barrier(THREADS, timeout=60)


def wallet_balances(ids) -> dict[int, int]:
    return dict(Account.objects.filter(id__in=list(ids)).values_list("id", "balance"))


def assert_ledger_clean() -> None:
    report = ledger_verify()
    assert report.ok, report.breaches
    assert not Account.objects.filter(balance__lt=0).exists()
    call_command("verify_ledger", stdout=io.StringIO(), stderr=io.StringIO())  # raises CommandError on a breach


def test_sixteen_threads_make_a_thousand_transfers_and_lose_nothing(make_enterprise, mint, wallet, ledger_path):
    currencies = ("HKD", "USD", "CNH")
    enterprises = [make_enterprise() for _ in range(5)]
    wallets = {code: [wallet(enterprise, code) for enterprise in enterprises] for code in currencies}
    for code in currencies:
        for account in wallets[code]:
            mint(account, "100.00")
    start = wallet_balances(account.id for code in currencies for account in wallets[code])
    per_thread = 64  # 16 x 64 = 1,024 posts

    def work(index: int) -> dict[str, object]:
        rng = random.Random(index)
        moved: dict[int, int] = defaultdict(int)
        outcome: Counter[str] = Counter()
        for n in range(per_thread):
            code = rng.choice(currencies)
            payer, *payees = rng.sample(wallets[code], 3)
            # Up to 40.00 out of wallets that start at 100.00: overdrafts happen, and are refused.
            amount = rng.randint(1, 40_00)
            if n % 8 == 0:
                # Now and then one payer pays two payees in one three-leg entry.
                split = rng.randint(1, amount - 1) if amount > 1 else 1
                legs = [Leg.debit(payer, amount + split), Leg.credit(payees[0], amount), Leg.credit(payees[1], split)]
            else:
                legs = legs_debit_credit(debit=payer, credit=payees[0], minor=amount)
            try:
                ledger_post(idempotency_key=f"t{index}:{n}", kind=EntryKind.TRANSFER, legs=legs)
            except InsufficientFunds:
                outcome["refused"] += 1
                continue
            outcome["posted"] += 1
            for leg in legs:
                moved[leg.account_id] -= leg.amount  # credit-normal wallets: balance = -sum(postings)
        return {"moved": moved, "outcome": outcome}

    results, errors = run_in_threads(THREADS, work)

    assert errors == []
    outcome = sum((r["outcome"] for r in results), Counter())
    assert outcome["posted"] + outcome["refused"] == THREADS * per_thread >= 1_000
    assert outcome["refused"] > 0, "no overdraft was attempted; the test proves less than it claims"
    assert JournalEntry.objects.filter(kind=EntryKind.TRANSFER).count() == outcome["posted"]
    # No lost update: every wallet is exactly where the successful transfers put it.
    expected = Counter(start)
    for result in results:
        expected.update(result["moved"])
    assert wallet_balances(start) == dict(expected)
    for code in currencies:
        assert sum(wallet_balances(a.id for a in wallets[code]).values()) == 5 * 100_00
    assert_ledger_clean()


def test_racing_for_the_last_funds_of_one_wallet_exactly_one_wins_each_round(
    make_enterprise, mint, wallet, ledger_path
):
    rounds = 8
    source = wallet(make_enterprise(), "CNH")
    payees = [wallet(make_enterprise(), "CNH") for _ in range(4)]
    mint(source, "100.00")
    start = new_barrier()
    done = new_barrier()
    topped_up = new_barrier()
    balance_seen: list[int] = []

    def work(index: int) -> list[str]:
        outcomes = []
        for round_no in range(rounds):
            start.wait()
            # Every thread at once asks for 60% of the wallet: only one can have it.
            try:
                ledger_post(
                    idempotency_key=f"race:{round_no}:{index}",
                    kind=EntryKind.TRANSFER,
                    legs=legs_debit_credit(debit=source, credit=payees[index % 4], minor=60_00),
                )
                outcomes.append("won")
            except InsufficientFunds:
                outcomes.append("lost")
            done.wait()
            if index == 0:
                balance_seen.append(Account.objects.get(pk=source.pk).balance)
                mint(source, "60.00")  # back to 100.00 for the next round
            topped_up.wait()
        return outcomes

    results, errors = run_in_threads(THREADS, work, barriers=(start, done, topped_up))

    assert errors == []
    per_round = [Counter(result[round_no] for result in results) for round_no in range(rounds)]
    assert per_round == [Counter(won=1, lost=THREADS - 1)] * rounds
    assert balance_seen == [40_00] * rounds
    assert Account.objects.get(pk=source.pk).balance == 100_00
    assert sum(Account.objects.filter(pk__in=[p.id for p in payees]).values_list("balance", flat=True)) == (
        rounds * 60_00
    )
    assert_ledger_clean()


def test_the_same_key_posted_by_many_threads_at_once_creates_one_entry(make_enterprise, mint, wallet, ledger_path):
    payer, payee = wallet(make_enterprise()), wallet(make_enterprise())
    mint(payer, "100.00")
    barrier = new_barrier()

    def work(index: int) -> PostResult:
        barrier.wait()
        # 60% of the wallet: a second *execution* would be an overdraft, a replay is not.
        return ledger_post(
            idempotency_key="pay-once",
            kind=EntryKind.TRANSFER,
            legs=legs_debit_credit(debit=payer, credit=payee, minor=60_00),
        )

    results, errors = run_in_threads(THREADS, work, barriers=(barrier,))

    assert errors == []
    assert JournalEntry.objects.filter(idempotency_key="pay-once").count() == 1
    entry = JournalEntry.objects.get(idempotency_key="pay-once")
    assert {result.entry_id for result in results} == {entry.id}
    assert sorted(result.created for result in results) == [False] * (THREADS - 1) + [True]
    assert wallet_balances([payer.id, payee.id]) == {payer.id: 40_00, payee.id: 60_00}
    assert_ledger_clean()


def test_the_same_key_with_different_content_from_many_threads_conflicts(make_enterprise, mint, wallet, ledger_path):
    payers = [wallet(make_enterprise()) for _ in range(4)]
    payees = [wallet(make_enterprise()) for _ in range(4)]
    for payer in payers:
        mint(payer, "100.00")
    start = wallet_balances(a.id for a in payers + payees)
    barrier = new_barrier()

    def work(index: int) -> tuple[PostResult, int]:
        barrier.wait()
        # Every thread a different amount, on overlapping and on disjoint accounts.
        amount = index + 1
        legs = legs_debit_credit(debit=payers[index % 4], credit=payees[(index // 4) % 4], minor=amount)
        return ledger_post(idempotency_key="contested", kind=EntryKind.TRANSFER, legs=legs), index

    results, errors = run_in_threads(THREADS, work, barriers=(barrier,))

    assert [type(error) for error in errors] == [IdempotencyConflict] * (THREADS - 1)
    (winner,) = [r for r in results if r is not None]
    result, index = winner
    assert result.created
    assert JournalEntry.objects.filter(idempotency_key="contested").count() == 1
    expected = dict(start)
    expected[payers[index % 4].id] -= index + 1
    expected[payees[(index // 4) % 4].id] += index + 1
    assert wallet_balances(start) == expected
    assert_ledger_clean()


@pytest.mark.parametrize(
    "payee_extra",
    [
        pytest.param("0.00", id="losers-find-the-funds-gone"),
        pytest.param("1000.00", id="losers-have-the-funds-and-meet-at-the-insert"),
    ],
)
def test_an_entry_reversed_by_many_threads_at_once_is_reversed_once(
    make_enterprise, mint, wallet, payee_extra, ledger_path
):
    payer, payee = wallet(make_enterprise()), wallet(make_enterprise())
    mint(payer, "100.00")
    if payee_extra != "0.00":
        mint(payee, payee_extra)
    original = ledger_post(
        idempotency_key="to-reverse",
        kind=EntryKind.TRANSFER,
        legs=legs_debit_credit(debit=payer, credit=payee, minor=60_00),
    )
    payee_before = Account.objects.get(pk=payee.pk).balance
    barrier = new_barrier()

    def work(index: int) -> PostResult:
        barrier.wait()
        # Each caller owns a transaction, as a service would; a refusal must leave it usable.
        with transaction.atomic():
            try:
                return ledger_reverse(entry_id=original.entry_id, idempotency_key=f"reverse:{index}")
            except EntryAlreadyReversed:
                assert JournalEntry.objects.filter(pk=original.entry_id).exists()
                raise

    results, errors = run_in_threads(THREADS, work, barriers=(barrier,))

    assert [type(error) for error in errors] == [EntryAlreadyReversed] * (THREADS - 1)
    assert [r.created for r in results if r is not None] == [True]
    assert JournalEntry.objects.filter(reverses_id=original.entry_id).count() == 1
    assert wallet_balances([payer.id, payee.id]) == {payer.id: 100_00, payee.id: payee_before - 60_00}
    assert_ledger_clean()


def test_posts_queueing_on_one_hot_platform_account_do_not_deadlock(make_enterprise, wallet, ledger_path):
    """Every post touches the USD reserve or in-transit row (the hot-row case), its legs in either order."""
    wallets = [wallet(make_enterprise(), "USD") for _ in range(4)]
    reserve = Account.objects.get(enterprise__isnull=True, kind=AccountKind.RESERVE, currency="USD")
    in_transit = Account.objects.get(enterprise__isnull=True, kind=AccountKind.REDEMPTION_IN_TRANSIT, currency="USD")

    def work(index: int) -> int:
        rng = random.Random(1000 + index)
        minted = 0
        for n in range(8):
            target = rng.choice(wallets)
            amount = rng.randint(1, 5_00)
            ledger_post(
                idempotency_key=f"hot-mint:{index}:{n}",
                kind=EntryKind.MINT,
                legs=legs_debit_credit(debit=reserve, credit=target, minor=amount),
            )
            # Redeem part of it: wallet -> in transit, the platform row now the credited leg.
            ledger_post(
                idempotency_key=f"hot-redeem:{index}:{n}",
                kind=EntryKind.REDEMPTION,
                legs=legs_debit_credit(debit=target, credit=in_transit, minor=1),
            )
            minted += amount
        return minted

    results, errors = run_in_threads(THREADS, work)

    assert errors == []
    assert Account.objects.get(pk=reserve.pk).balance == sum(results)
    assert Account.objects.get(pk=in_transit.pk).balance == THREADS * 8
    assert sum(wallet_balances(a.id for a in wallets).values()) == sum(results) - THREADS * 8
    assert_ledger_clean()

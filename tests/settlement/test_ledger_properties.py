"""Conservation laws of the ledger, by hypothesis, on both posting paths.

Random sequences of mints, transfers (overdrafts included), split payments,
reversals (second reversals and reversals of reversals included) and replays
among three enterprises' wallets in the three currencies. The test keeps its
own model of what every balance must be and predicts each outcome (posted,
refused for funds, refused as already reversed or not reversible, replayed);
after every sequence the ledger must agree with the model, every currency must
be conserved (ledger_verify: postings sum to zero, balances equal postings,
supply equals reserve) and no balance may be negative.

Each example runs inside a savepoint that is rolled back, so examples start
from the same empty wallets without recreating the database.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from config import money
from settlement.ledger.models import Account, EntryKind
from settlement.ledger.selectors import ledger_verify
from settlement.ledger.services import (
    EntryAlreadyReversed,
    EntryNotReversible,
    InsufficientFunds,
    Leg,
    ledger_post,
    ledger_reverse,
)

ENTERPRISES = 3
CURRENCIES = money.CURRENCY_CODES
RESERVE = "reserve"

amounts = st.integers(min_value=1, max_value=60_00)
currencies = st.sampled_from(CURRENCIES)
parties = st.permutations(range(ENTERPRISES))
pick = st.integers(min_value=0, max_value=10**6)  # an earlier entry, modulo how many there are

operations = st.one_of(
    st.tuples(st.just("mint"), st.integers(0, ENTERPRISES - 1), currencies, st.integers(1, 100_00)),
    st.tuples(st.just("transfer"), parties, currencies, amounts),
    st.tuples(st.just("split"), parties, currencies, amounts, amounts),
    st.tuples(st.just("reverse"), pick),
    st.tuples(st.just("replay"), pick),
)


@dataclass
class Entry:
    """What the model knows of one posted entry."""

    key: str
    kind: str
    legs: list[tuple[object, str, int]]  # (party, currency, signed minor amount)
    entry_id: int
    reverses: int | None = None  # index of the entry a reversal reverses
    reversed: bool = False


@dataclass
class Model:
    balances: dict[tuple[object, str], int] = field(default_factory=lambda: defaultdict(int))
    entries: list[Entry] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def normal(self, party) -> int:
        return 1 if party == RESERVE else -1

    def feasible(self, legs) -> bool:
        after = dict(self.balances)
        for party, currency, amount in legs:
            after[(party, currency)] = after.get((party, currency), 0) + self.normal(party) * amount
        return all(balance >= 0 for balance in after.values())

    def apply(self, legs) -> None:
        for party, currency, amount in legs:
            self.balances[(party, currency)] += self.normal(party) * amount


@pytest.fixture
def accounts(make_enterprise, wallet, reserve) -> dict[tuple[object, str], Account]:
    enterprises = [make_enterprise() for _ in range(ENTERPRISES)]
    found = {(index, code): wallet(e, code) for index, e in enumerate(enterprises) for code in CURRENCIES}
    found.update({(RESERVE, code): reserve(code) for code in CURRENCIES})
    return found


def run_sequence(ops, accounts) -> Model:
    model = Model()

    def legs_for(legs) -> list[Leg]:
        return [Leg(accounts[(party, currency)].id, currency, amount) for party, currency, amount in legs]

    def post(kind, legs) -> None:
        key = f"op:{len(model.entries)}:{kind}"
        if model.feasible(legs):
            result = ledger_post(idempotency_key=key, kind=kind, legs=legs_for(legs))
            assert result.created
            model.apply(legs)
            model.entries.append(Entry(key, kind, legs, result.entry_id))
            model.outcomes["posted"] += 1
        else:
            with pytest.raises(InsufficientFunds):
                ledger_post(idempotency_key=key, kind=kind, legs=legs_for(legs))
            model.outcomes["overdraft refused"] += 1

    for number, op in enumerate(ops):
        match op:
            case ("mint", party, currency, amount):
                post(EntryKind.MINT, [(RESERVE, currency, amount), (party, currency, -amount)])
            case ("transfer", (payer, payee, _), currency, amount):
                post(EntryKind.TRANSFER, [(payer, currency, amount), (payee, currency, -amount)])
            case ("split", (payer, first, second), currency, one, two):
                post(
                    EntryKind.NETTING,
                    [(payer, currency, one + two), (first, currency, -one), (second, currency, -two)],
                )
            case ("reverse", index) if model.entries:
                original = model.entries[index % len(model.entries)]
                key = f"reverse:{number}"
                opposite = [(party, currency, -amount) for party, currency, amount in original.legs]
                if original.kind == EntryKind.REVERSAL:
                    with pytest.raises(EntryNotReversible):
                        ledger_reverse(entry_id=original.entry_id, idempotency_key=key)
                    model.outcomes["reversal of a reversal refused"] += 1
                elif original.reversed:
                    with pytest.raises(EntryAlreadyReversed):
                        ledger_reverse(entry_id=original.entry_id, idempotency_key=key)
                    model.outcomes["second reversal refused"] += 1
                elif not model.feasible(opposite):
                    with pytest.raises(InsufficientFunds):
                        ledger_reverse(entry_id=original.entry_id, idempotency_key=key)
                    model.outcomes["reversal refused for funds"] += 1
                else:
                    result = ledger_reverse(entry_id=original.entry_id, idempotency_key=key)
                    assert result.created
                    model.apply(opposite)
                    original.reversed = True
                    model.entries.append(
                        Entry(key, EntryKind.REVERSAL, opposite, result.entry_id, reverses=original.entry_id)
                    )
                    model.outcomes["reversed"] += 1
            case ("replay", index) if model.entries:
                entry = model.entries[index % len(model.entries)]
                before = dict(Account.objects.values_list("id", "balance"))
                if entry.reverses is not None:
                    result = ledger_reverse(entry_id=entry.reverses, idempotency_key=entry.key)
                else:
                    result = ledger_post(idempotency_key=entry.key, kind=entry.kind, legs=legs_for(entry.legs))
                assert (result.entry_id, result.created) == (entry.entry_id, False)
                assert dict(Account.objects.values_list("id", "balance")) == before
                model.outcomes["replayed"] += 1
    return model


def assert_ledger_matches(model: Model, accounts) -> None:
    stored = dict(Account.objects.filter(id__in=[a.id for a in accounts.values()]).values_list("id", "balance"))
    expected = {account.id: model.balances.get(name, 0) for name, account in accounts.items()}
    assert stored == expected
    assert all(balance >= 0 for balance in stored.values())
    # Conservation: per currency the reserve backs every wallet exactly.
    for code in CURRENCIES:
        wallets = sum(model.balances.get((index, code), 0) for index in range(ENTERPRISES))
        assert model.balances.get((RESERVE, code), 0) == wallets
    report = ledger_verify()
    assert report.ok, report.breaches


@settings(
    max_examples=50,
    deadline=None,
    # The accounts fixture is built once per test; each example rolls its own work back.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operations, min_size=1, max_size=40))
def test_random_sequences_conserve_every_currency_and_agree_with_the_model(accounts, ledger_path, ops):
    with transaction.atomic():
        model = run_sequence(ops, accounts)
        assert_ledger_matches(model, accounts)
        transaction.set_rollback(True)
    for outcome in model.outcomes:
        event(outcome)


def test_the_property_test_reaches_every_outcome(accounts, ledger_path):
    """A fixed sequence, so that every branch of the model is known to be exercised."""
    ops = [
        ("mint", 0, "HKD", 100_00),
        ("transfer", (0, 1, 2), "HKD", 70_00),
        ("transfer", (0, 2, 1), "HKD", 70_00),  # overdraft
        ("split", (1, 0, 2), "HKD", 20_00, 30_00),
        ("reverse", 1),  # the transfer: 1 holds 20.00 of the 70.00 it must give back
        ("reverse", 2),  # the split
        ("reverse", 2),  # again: refused
        ("reverse", 3),  # the reversal: not reversible
        ("reverse", 1),  # the transfer, now that 1 has its 50.00 back
        ("replay", 0),
        ("replay", 3),
        ("mint", 2, "CNH", 1),
    ]

    with transaction.atomic():
        model = run_sequence(ops, accounts)
        assert_ledger_matches(model, accounts)
        transaction.set_rollback(True)

    assert dict(model.outcomes) == {
        "posted": 4,
        "overdraft refused": 1,
        "reversal refused for funds": 1,
        "reversed": 2,
        "second reversal refused": 1,
        "reversal of a reversal refused": 1,
        "replayed": 2,
    }

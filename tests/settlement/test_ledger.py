"""The ledger service, rule by rule, on both posting paths; then PostgreSQL's last line of defence.

Every service test takes ``ledger_path``, so it runs once through the
server-side function hl_ledger_post and once through the portable ORM path.
A refusal must write nothing: each one compares the whole ledger (entries,
postings, every balance) before and after.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from settlement.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from settlement.ledger.selectors import balances_for, ledger_verify, platform_account
from settlement.ledger.services import (
    AccountFrozen,
    AccountNotFound,
    CurrencyMismatch,
    EntryAlreadyReversed,
    EntryNotReversible,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidEntry,
    Leg,
    UnbalancedEntry,
    account_freeze,
    ledger_post,
    ledger_reverse,
    legs_debit_credit,
)
from tests.settlement.conftest import balance_of, new_key, postings_sum

# --- posting ---------------------------------------------------------------------


def test_a_transfer_moves_funds_and_records_two_signed_postings(make_enterprise, mint, wallet, transfer, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "100.00", "CNH")
    payer_wallet, payee_wallet = wallet(payer, "CNH"), wallet(payee, "CNH")

    result = transfer(payer_wallet, payee_wallet, 4_000, key="t-1")

    assert result.created
    assert result.public_id.startswith("je_")
    entry = JournalEntry.objects.get(pk=result.entry_id)
    assert (entry.kind, entry.idempotency_key, entry.reverses_id) == (EntryKind.TRANSFER, "t-1", None)
    # A wallet is credit-normal: paying out is a debit (positive), receiving a credit (negative).
    assert sorted(entry.postings.values_list("account_id", "currency", "amount")) == sorted(
        [(payer_wallet.id, "CNH", 4_000), (payee_wallet.id, "CNH", -4_000)]
    )
    assert balances_for(enterprise=payer) == {"HKD": 0, "USD": 0, "CNH": 6_000}
    assert balances_for(enterprise=payee) == {"HKD": 0, "USD": 0, "CNH": 4_000}
    assert ledger_verify().ok


def test_a_mint_grows_the_reserve_and_the_wallet(make_enterprise, wallet, reserve, ledger_path):
    enterprise = make_enterprise()

    ledger_post(
        idempotency_key="mint-1",
        kind=EntryKind.MINT,
        legs=legs_debit_credit(debit=reserve("USD"), credit=wallet(enterprise, "USD"), minor=1_250_00),
    )

    # The reserve is debit-normal (an asset), the wallet credit-normal (a liability): both read positive.
    assert (reserve("USD").normal, wallet(enterprise, "USD").normal) == (1, -1)
    assert balance_of(reserve("USD")) == 1_250_00
    assert balance_of(wallet(enterprise, "USD")) == 1_250_00
    assert wallet(enterprise, "USD").balance_decimal == Decimal("1250.00")


def test_a_multi_leg_multi_currency_entry_posts_atomically(make_enterprise, mint, wallet, ledger_path):
    """An FX swap: HKD from the client to inventory, USD from inventory to the client, in one entry."""
    client = make_enterprise()
    mint(client, "1000.00", "HKD")
    fx_hkd = mint(platform_account(kind=AccountKind.FX_INVENTORY, currency="HKD"), "10.00", "HKD")
    fx_usd = mint(platform_account(kind=AccountKind.FX_INVENTORY, currency="USD"), "500.00", "USD")
    client_hkd, client_usd = wallet(client, "HKD"), wallet(client, "USD")

    result = ledger_post(
        idempotency_key="fx-1",
        kind=EntryKind.FX_SWAP,
        legs=[
            Leg.debit(client_hkd, 780_00),
            Leg.credit(fx_hkd, 780_00),
            Leg.debit(fx_usd, 100_00),
            Leg.credit(client_usd, 100_00),
        ],
        metadata={"quote": "fxq_test"},
    )

    assert result.created
    assert Posting.objects.filter(entry_id=result.entry_id).count() == 4
    assert JournalEntry.objects.get(pk=result.entry_id).metadata == {"quote": "fxq_test"}
    assert balances_for(enterprise=client) == {"HKD": 220_00, "USD": 100_00, "CNH": 0}
    assert (balance_of(fx_hkd), balance_of(fx_usd)) == (790_00, 400_00)
    assert ledger_verify().ok


def test_one_payer_pays_several_payees_in_one_entry(make_enterprise, mint, wallet, ledger_path):
    payer, first, second = make_enterprise(), make_enterprise(), make_enterprise()
    mint(payer, "100.00")

    ledger_post(
        idempotency_key="split-1",
        kind=EntryKind.NETTING,
        legs=[
            Leg.debit(wallet(payer), 70_00),
            Leg.credit(wallet(first), 25_00),
            Leg.credit(wallet(second), 45_00),
        ],
    )

    assert [balances_for(enterprise=e)["HKD"] for e in (payer, first, second)] == [30_00, 25_00, 45_00]


def test_legs_on_the_same_account_are_netted_before_the_funds_check(make_enterprise, mint, wallet, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "10.00")

    # 15.00 out and 6.00 back in nets to 9.00 out, which the 10.00 covers.
    ledger_post(
        idempotency_key="net-1",
        kind=EntryKind.TRANSFER,
        legs=[Leg.debit(wallet(payer), 15_00), Leg.credit(wallet(payer), 6_00), Leg.credit(wallet(payee), 9_00)],
    )

    assert balance_of(wallet(payer)) == 1_00
    # Credit-normal: the balance is minus the signed sum (10.00 minted is -10.00, then +15.00 -6.00).
    assert postings_sum(wallet(payer)) == -1_00


def test_memo_and_metadata_are_stored(make_enterprise, mint, wallet, transfer, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "5.00")

    result = ledger_post(
        idempotency_key="memo-1",
        kind=EntryKind.TRANSFER,
        legs=legs_debit_credit(debit=wallet(payer), credit=wallet(payee), minor=1),
        memo="Invoice 4711",
        metadata={"erp_reference": "INV-4711", "lines": [1, 2]},
    )

    entry = JournalEntry.objects.get(pk=result.entry_id)
    assert (entry.memo, entry.metadata) == ("Invoice 4711", {"erp_reference": "INV-4711", "lines": [1, 2]})
    assert entry.created_at is not None


# --- malformed entries write nothing ------------------------------------------------


@pytest.mark.parametrize(
    "legs",
    [
        pytest.param(lambda a, b, u: [Leg.debit(a, 100), Leg.credit(b, 99)], id="two-legs-off-by-one"),
        pytest.param(lambda a, b, u: [Leg.debit(a, 100), Leg.debit(b, 100)], id="two-debits"),
        pytest.param(
            lambda a, b, u: [Leg.debit(a, 100), Leg.credit(u, 100)],
            id="sums-to-zero-overall-not-per-currency",
        ),
        pytest.param(
            lambda a, b, u: [Leg.debit(a, 100), Leg.credit(b, 100), Leg.debit(u, 5), Leg.credit(u, 4)],
            id="one-currency-of-two-off",
        ),
    ],
)
def test_an_unbalanced_entry_is_refused_and_writes_nothing(make_enterprise, mint, wallet, state, legs, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "10.00")
    mint(payer, "10.00", "USD")
    before = state()

    with pytest.raises(UnbalancedEntry) as caught:
        ledger_post(
            idempotency_key="unbalanced",
            kind=EntryKind.TRANSFER,
            legs=legs(wallet(payer), wallet(payee), wallet(payer, "USD")),
        )

    assert caught.value.code == "entry_unbalanced"
    assert state() == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"legs": lambda a, b: []}, "at least two", id="no-legs"),
        pytest.param({"legs": lambda a, b: [Leg(a.id, "HKD", 0)]}, "at least two", id="one-zero-leg"),
        pytest.param(
            {"legs": lambda a, b: [Leg.debit(a, 100), Leg.credit(b, 100), Leg(b.id, "HKD", 0)]},
            "non-zero",
            id="zero-amount-leg",
        ),
        pytest.param({"legs": lambda a, b: [Leg(a.id, "HKD", 0), Leg(b.id, "HKD", 0)]}, "non-zero", id="all-zero-legs"),
        pytest.param(
            {"legs": lambda a, b: [Leg(a.id, "HKD", Decimal(1)), Leg(b.id, "HKD", Decimal(-1))]},
            "integer",
            id="decimal-amount",
        ),
        pytest.param(
            {"legs": lambda a, b: [Leg(a.id, "HKD", 1.0), Leg(b.id, "HKD", -1.0)]}, "integer", id="float-amount"
        ),
        pytest.param({"legs": lambda a, b: [Leg(a.id, "HKD", True), Leg(b.id, "HKD", -1)]}, "integer", id="bool"),
        pytest.param(
            {"legs": lambda a, b: [Leg(a.id, "HKD", -(2**63)), Leg(b.id, "HKD", 2**63)]},
            "exceeds",
            id="beyond-64-bits",
        ),
        pytest.param({"legs": lambda a, b: [Leg(a.id, "CNY", 1), Leg(b.id, "CNY", -1)]}, "currency", id="cny"),
        pytest.param({"legs": lambda a, b: [Leg(a.id, "hkd", 1), Leg(b.id, "hkd", -1)]}, "currency", id="lowercase"),
        pytest.param({"kind": "gift"}, "kind", id="unknown-kind"),
        pytest.param({"kind": ""}, "kind", id="empty-kind"),
        pytest.param({"idempotency_key": ""}, "idempotency key", id="empty-key"),
        pytest.param({"idempotency_key": "k" * 256}, "idempotency key", id="key-too-long"),
    ],
)
def test_a_malformed_entry_is_refused_and_writes_nothing(
    make_enterprise, mint, wallet, state, kwargs, message, ledger_path
):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "10.00")
    post = {
        "idempotency_key": "malformed",
        "kind": EntryKind.TRANSFER,
        "legs": lambda a, b: [Leg.debit(a, 100), Leg.credit(b, 100)],
    } | kwargs
    post["legs"] = post["legs"](wallet(payer), wallet(payee))
    before = state()

    with pytest.raises(InvalidEntry, match=message) as caught:
        ledger_post(**post)

    assert caught.value.code == "entry_invalid"
    assert state() == before


def test_a_key_of_255_characters_is_accepted(make_enterprise, mint, wallet, transfer, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "1.00")

    assert transfer(wallet(payer), wallet(payee), 1, key="k" * 255).created


def test_legs_debit_credit_refuses_nonsense(make_enterprise, wallet, ledger_path):
    enterprise, other = make_enterprise(), make_enterprise()

    with pytest.raises(InvalidEntry):
        legs_debit_credit(debit=wallet(enterprise), credit=wallet(other), minor=0)
    with pytest.raises(InvalidEntry):
        legs_debit_credit(debit=wallet(enterprise), credit=wallet(other), minor=-5)
    with pytest.raises(CurrencyMismatch):
        legs_debit_credit(debit=wallet(enterprise, "HKD"), credit=wallet(other, "USD"), minor=5)


# --- idempotency -------------------------------------------------------------------------


def test_the_same_key_with_the_same_content_returns_the_first_entry(
    make_enterprise, mint, wallet, transfer, state, ledger_path
):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "100.00")
    first = transfer(wallet(payer), wallet(payee), 30_00, key="pay-1")
    after_first = state()

    again = transfer(wallet(payer), wallet(payee), 30_00, key="pay-1")
    # The same legs in another order, with another memo, are the same entry.
    reordered = ledger_post(
        idempotency_key="pay-1",
        kind=EntryKind.TRANSFER,
        legs=list(reversed(legs_debit_credit(debit=wallet(payer), credit=wallet(payee), minor=30_00))),
        memo="a retry",
    )

    assert first.created
    assert (again.entry_id, again.public_id, again.created) == (first.entry_id, first.public_id, False)
    assert (reordered.entry_id, reordered.created) == (first.entry_id, False)
    assert state() == after_first
    assert balance_of(wallet(payer)) == 70_00


def test_a_replay_is_answered_even_when_the_funds_have_since_gone(
    make_enterprise, mint, wallet, transfer, state, ledger_path
):
    payer, payee, other = make_enterprise(), make_enterprise(), make_enterprise()
    mint(payer, "100.00")
    first = transfer(wallet(payer), wallet(payee), 100_00, key="pay-all")
    transfer(wallet(payee), wallet(other), 100_00)
    before = state()

    again = transfer(wallet(payer), wallet(payee), 100_00, key="pay-all")

    assert (again.entry_id, again.created) == (first.entry_id, False)
    assert state() == before


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda a, b: {"legs": legs_debit_credit(debit=a, credit=b, minor=30_01)}, id="amount"),
        pytest.param(lambda a, b: {"legs": legs_debit_credit(debit=b, credit=a, minor=30_00)}, id="direction"),
        pytest.param(lambda a, b: {"kind": EntryKind.NETTING}, id="kind"),
    ],
)
def test_the_same_key_with_other_content_is_a_conflict_and_writes_nothing(
    make_enterprise, mint, wallet, transfer, state, change, ledger_path
):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "100.00")
    mint(payee, "100.00")
    transfer(wallet(payer), wallet(payee), 30_00, key="pay-1")
    before = state()
    post = {
        "idempotency_key": "pay-1",
        "kind": EntryKind.TRANSFER,
        "legs": legs_debit_credit(debit=wallet(payer), credit=wallet(payee), minor=30_00),
    } | change(wallet(payer), wallet(payee))

    with pytest.raises(IdempotencyConflict) as caught:
        ledger_post(**post)

    assert (caught.value.code, caught.value.http_status) == ("idempotency_conflict", 409)
    assert state() == before


def test_a_key_used_by_one_entry_conflicts_with_an_entry_on_other_accounts(
    make_enterprise, mint, wallet, transfer, state, ledger_path
):
    a, b, c, d = (make_enterprise() for _ in range(4))
    mint(a, "10.00")
    mint(c, "10.00", "USD")
    transfer(wallet(a), wallet(b), 1_00, key="shared-key")
    before = state()

    with pytest.raises(IdempotencyConflict):
        transfer(wallet(c, "USD"), wallet(d, "USD"), 1_00, key="shared-key")

    assert state() == before


# --- refusals: funds, frozen, unknown account, currency -----------------------------------


def test_an_overdraft_is_refused_and_writes_nothing(make_enterprise, mint, wallet, transfer, state, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "10.00")
    before = state()

    with pytest.raises(InsufficientFunds) as caught:
        transfer(wallet(payer), wallet(payee), 10_01)

    assert (caught.value.code, caught.value.account_id, caught.value.http_status) == (
        "insufficient_funds",
        wallet(payer).id,
        422,
    )
    assert state() == before
    # The exact balance is not an overdraft.
    transfer(wallet(payer), wallet(payee), 10_00)
    assert balance_of(wallet(payer)) == 0


def test_an_empty_wallet_cannot_pay_one_minor_unit(make_enterprise, wallet, transfer, state, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    before = state()

    with pytest.raises(InsufficientFunds):
        transfer(wallet(payer, "CNH"), wallet(payee, "CNH"), 1)

    assert state() == before


def test_platform_accounts_cannot_go_below_zero_either(make_enterprise, mint, wallet, reserve, state, ledger_path):
    enterprise = make_enterprise()
    in_transit = platform_account(kind=AccountKind.REDEMPTION_IN_TRANSIT, currency="HKD")
    before = state()

    # Paying out of an empty in-transit account into the reserve would make both negative.
    with pytest.raises(InsufficientFunds) as caught:
        ledger_post(
            idempotency_key="paid-1",
            kind=EntryKind.REDEMPTION_PAID,
            legs=legs_debit_credit(debit=in_transit, credit=reserve("HKD"), minor=1_00),
        )
    # The lowest account id is reported (checks run in lock order).
    assert caught.value.account_id == min(in_transit.id, reserve("HKD").id)
    assert state() == before
    assert wallet(enterprise).balance == 0


def _refusals(payer, payee, payer_usd):
    """Posts that each fail a different rule, for the transaction-usable test."""
    return {
        "insufficient_funds": (
            InsufficientFunds,
            {"legs": legs_debit_credit(debit=payer, credit=payee, minor=10**9)},
        ),
        "account_not_found": (
            AccountNotFound,
            {"legs": [Leg(payer.id, "HKD", 1), Leg(10**12, "HKD", -1)]},
        ),
        "currency_mismatch": (
            CurrencyMismatch,
            {"legs": [Leg(payer.id, "USD", 1), Leg(payer_usd.id, "USD", -1)]},
        ),
        "idempotency_conflict": (
            IdempotencyConflict,
            {"idempotency_key": "used", "legs": legs_debit_credit(debit=payer, credit=payee, minor=2)},
        ),
        "unbalanced": (UnbalancedEntry, {"legs": [Leg.debit(payer, 2), Leg.credit(payee, 1)]}),
    }


@pytest.mark.parametrize(
    "refusal", ["insufficient_funds", "account_not_found", "currency_mismatch", "idempotency_conflict", "unbalanced"]
)
def test_a_refusal_leaves_the_callers_transaction_usable(
    make_enterprise, mint, wallet, transfer, state, refusal, ledger_path
):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "10.00")
    transfer(wallet(payer), wallet(payee), 1, key="used")
    before = state()
    error, post = _refusals(wallet(payer), wallet(payee), wallet(payer, "USD"))[refusal]

    with transaction.atomic():
        with pytest.raises(error):
            ledger_post(**{"idempotency_key": "refused", "kind": EntryKind.TRANSFER} | post)
        assert state() == before
        # Same transaction, after the refusal: the caller carries on and commits.
        transfer(wallet(payer), wallet(payee), 2_00, key="after-refusal")
        transfer(wallet(payer), wallet(payee), 3_00, key="after-refusal-2")

    assert balance_of(wallet(payer)) == 10_00 - 1 - 5_00
    assert JournalEntry.objects.filter(idempotency_key__startswith="after-refusal").count() == 2
    assert not JournalEntry.objects.filter(idempotency_key="refused").exists()
    assert ledger_verify().ok


def test_posts_inside_a_callers_transaction_roll_back_with_it(
    make_enterprise, mint, wallet, transfer, state, ledger_path
):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "10.00")
    before = state()

    with pytest.raises(RuntimeError), transaction.atomic():
        transfer(wallet(payer), wallet(payee), 4_00, key="in-txn-1")
        transfer(wallet(payer), wallet(payee), 5_00, key="in-txn-2")
        assert balance_of(wallet(payee)) == 9_00  # visible inside the transaction ...
        raise RuntimeError("the use case fails after posting")

    assert state() == before  # ... and gone with it: money moves with its transaction or not at all
    assert transfer(wallet(payer), wallet(payee), 4_00, key="in-txn-1").created


def test_a_frozen_account_takes_no_debit_but_may_be_credited(
    make_enterprise, mint, wallet, transfer, state, ledger_path
):
    frozen, other = make_enterprise(), make_enterprise()
    mint(frozen, "50.00")
    mint(other, "50.00")
    account_freeze(account=wallet(frozen))
    before = state()

    with pytest.raises(AccountFrozen) as caught:
        transfer(wallet(frozen), wallet(other), 1_00)
    assert (caught.value.code, caught.value.account_id) == ("account_frozen", wallet(frozen).id)
    assert state() == before

    transfer(wallet(other), wallet(frozen), 20_00)
    assert balance_of(wallet(frozen)) == 70_00

    account_freeze(account=wallet(frozen), frozen=False)
    transfer(wallet(frozen), wallet(other), 70_00)
    assert balance_of(wallet(frozen)) == 0


def test_a_frozen_account_takes_no_debit_even_inside_a_net_credit(make_enterprise, mint, wallet, state, ledger_path):
    frozen, other = make_enterprise(), make_enterprise()
    mint(frozen, "50.00")
    mint(other, "50.00")
    account_freeze(account=wallet(frozen))
    before = state()

    # 1.00 out and 2.00 in: a net credit, but it still debits the frozen account.
    with pytest.raises(AccountFrozen):
        ledger_post(
            idempotency_key="net-credit",
            kind=EntryKind.TRANSFER,
            legs=[Leg.debit(wallet(frozen), 1_00), Leg.credit(wallet(frozen), 2_00), Leg.debit(wallet(other), 1_00)],
        )

    assert state() == before


def test_an_unknown_account_is_refused(make_enterprise, mint, wallet, state, ledger_path):
    payer = make_enterprise()
    mint(payer, "10.00")
    missing = Account.objects.order_by("-id").values_list("id", flat=True).first() + 1000
    before = state()

    with pytest.raises(AccountNotFound) as caught:
        ledger_post(
            idempotency_key="ghost",
            kind=EntryKind.TRANSFER,
            legs=[Leg.debit(wallet(payer), 1_00), Leg(missing, "HKD", -1_00)],
        )

    assert (caught.value.code, caught.value.account_id) == ("account_not_found", missing)
    assert state() == before


@pytest.mark.parametrize(
    "legs",
    [
        pytest.param(
            lambda hkd, usd, payee: [Leg(hkd.id, "USD", 1_00), Leg.credit(usd, 1_00)],
            id="posting-currency-differs-from-account",
        ),
        pytest.param(
            lambda hkd, usd, payee: [
                Leg(hkd.id, "HKD", 1_00),
                Leg.credit(payee, 1_00),
                Leg(hkd.id, "USD", 1_00),
                Leg.credit(usd, 1_00),
            ],
            id="one-account-in-two-currencies",
        ),
    ],
)
def test_a_posting_in_another_currency_than_its_account_is_refused(
    make_enterprise, mint, wallet, state, legs, ledger_path
):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "10.00")
    mint(payer, "10.00", "USD")
    before = state()

    with pytest.raises(CurrencyMismatch) as caught:
        ledger_post(
            idempotency_key="mismatch",
            kind=EntryKind.TRANSFER,
            legs=legs(wallet(payer, "HKD"), wallet(payer, "USD"), wallet(payee, "HKD")),
        )

    assert (caught.value.code, caught.value.account_id) == ("currency_mismatch", wallet(payer, "HKD").id)
    assert state() == before


# --- reversals -------------------------------------------------------------------------------


def test_a_reversal_restores_balances_and_points_at_the_original(make_enterprise, mint, wallet, transfer, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "100.00")
    original = transfer(wallet(payer), wallet(payee), 40_00)

    reversal = ledger_reverse(entry_id=original.entry_id, idempotency_key="rev-1")

    assert reversal.created
    entry = JournalEntry.objects.get(pk=reversal.entry_id)
    assert (entry.kind, entry.reverses_id) == (EntryKind.REVERSAL, original.entry_id)
    assert JournalEntry.objects.get(pk=original.entry_id).reversed_by == entry
    assert entry.memo.startswith("Reversal of je_")
    assert sorted(entry.postings.values_list("account_id", "amount")) == sorted(
        (account_id, -amount)
        for account_id, amount in Posting.objects.filter(entry_id=original.entry_id).values_list("account_id", "amount")
    )
    assert (balance_of(wallet(payer)), balance_of(wallet(payee))) == (100_00, 0)
    assert ledger_verify().ok


def test_a_reversal_of_a_multi_currency_entry_restores_every_balance(make_enterprise, mint, wallet, state, ledger_path):
    client = make_enterprise()
    mint(client, "100.00", "HKD")
    fx_usd = mint(platform_account(kind=AccountKind.FX_INVENTORY, currency="USD"), "100.00", "USD")
    fx_hkd = platform_account(kind=AccountKind.FX_INVENTORY, currency="HKD")
    before = state()
    swap = ledger_post(
        idempotency_key="fx-r",
        kind=EntryKind.FX_SWAP,
        legs=[
            Leg.debit(wallet(client, "HKD"), 78_00),
            Leg.credit(fx_hkd, 78_00),
            Leg.debit(fx_usd, 10_00),
            Leg.credit(wallet(client, "USD"), 10_00),
        ],
    )

    ledger_reverse(entry_id=swap.entry_id, idempotency_key="fx-r-rev", memo="client disputed the rate")

    assert state().balances == before.balances
    assert JournalEntry.objects.get(reverses_id=swap.entry_id).memo == "client disputed the rate"


def test_an_entry_is_reversed_at_most_once(make_enterprise, mint, wallet, transfer, state, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "100.00")
    original = transfer(wallet(payer), wallet(payee), 40_00)
    first = ledger_reverse(entry_id=original.entry_id, idempotency_key="rev-1")
    before = state()

    # The same key again is a replay of the first reversal ...
    again = ledger_reverse(entry_id=original.entry_id, idempotency_key="rev-1")
    assert (again.entry_id, again.created) == (first.entry_id, False)
    # ... another key is a second reversal, and refused.
    with pytest.raises(EntryAlreadyReversed) as caught:
        ledger_reverse(entry_id=original.entry_id, idempotency_key="rev-2")

    assert caught.value.code == "entry_already_reversed"
    assert state() == before


def test_a_second_reversal_inside_a_transaction_leaves_it_usable(
    make_enterprise, mint, wallet, transfer, state, ledger_path
):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "100.00")
    original = transfer(wallet(payer), wallet(payee), 40_00)
    ledger_reverse(entry_id=original.entry_id, idempotency_key="rev-1")

    with transaction.atomic():
        with pytest.raises(EntryAlreadyReversed):
            ledger_reverse(entry_id=original.entry_id, idempotency_key="rev-2")
        transfer(wallet(payer), wallet(payee), 1_00, key="after")

    assert JournalEntry.objects.filter(idempotency_key="after").exists()


def test_a_reversal_cannot_be_reversed(make_enterprise, mint, wallet, transfer, state, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "100.00")
    original = transfer(wallet(payer), wallet(payee), 40_00)
    reversal = ledger_reverse(entry_id=original.entry_id, idempotency_key="rev-1")
    before = state()

    with pytest.raises(EntryNotReversible) as caught:
        ledger_reverse(entry_id=reversal.entry_id, idempotency_key="rev-of-rev")

    assert caught.value.code == "entry_not_reversible"
    assert state() == before


def test_a_reversal_needs_the_funds_back(make_enterprise, mint, wallet, transfer, state, ledger_path):
    payer, payee, other = make_enterprise(), make_enterprise(), make_enterprise()
    mint(payer, "100.00")
    original = transfer(wallet(payer), wallet(payee), 40_00)
    transfer(wallet(payee), wallet(other), 30_00)
    before = state()

    with pytest.raises(InsufficientFunds) as caught:
        ledger_reverse(entry_id=original.entry_id, idempotency_key="rev-1")

    assert caught.value.account_id == wallet(payee).id
    assert state() == before
    assert not JournalEntry.objects.filter(reverses_id=original.entry_id).exists()


def test_reversing_a_missing_entry_is_invalid(platform, state, ledger_path):
    with pytest.raises(InvalidEntry):
        ledger_reverse(entry_id=10**12, idempotency_key="rev-ghost")


def test_only_a_reversal_may_point_at_another_entry(make_enterprise, mint, wallet, transfer, state, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "10.00")
    original = transfer(wallet(payer), wallet(payee), 1_00)
    before = state()

    with transaction.atomic():
        with pytest.raises(InvalidEntry, match="only a reversal"):
            ledger_post(
                idempotency_key="not-a-reversal",
                kind=EntryKind.TRANSFER,
                legs=legs_debit_credit(debit=wallet(payee), credit=wallet(payer), minor=1_00),
                reverses_id=original.entry_id,
            )
        with pytest.raises(InvalidEntry, match="only a reversal"):
            ledger_post(
                idempotency_key="reversal-of-nothing",
                kind=EntryKind.REVERSAL,
                legs=legs_debit_credit(debit=wallet(payee), credit=wallet(payer), minor=1_00),
            )
        assert state() == before
        transfer(wallet(payee), wallet(payer), 1_00, key="after")  # the transaction is still usable


def test_the_database_also_refuses_a_non_reversal_pointing_at_an_entry(posted_entry):
    with pytest.raises(IntegrityError, match="entry_reversal_points_at_original"), transaction.atomic():
        raw(
            "INSERT INTO settlement_journalentry"
            " (public_id, idempotency_key, content_hash, kind, memo, metadata, reverses_id, created_at)"
            " VALUES ('je_x', 'k', 'x', 'transfer', '', '{}', %s, now())",
            [posted_entry],
        )


# --- balances are the sum of the postings --------------------------------------------------------


def test_every_balance_equals_normal_times_the_sum_of_its_postings(
    make_enterprise, mint, wallet, transfer, ledger_path
):
    a, b, c = make_enterprise(), make_enterprise(), make_enterprise()
    for currency in ("HKD", "USD", "CNH"):
        mint(a, "300.00", currency)
        mint(b, "7.77", currency)
        transfer(wallet(a, currency), wallet(b, currency), 123_45)
        transfer(wallet(b, currency), wallet(c, currency), 100_00)
        last = transfer(wallet(c, currency), wallet(a, currency), 50_01)
        ledger_reverse(entry_id=last.entry_id, idempotency_key=new_key("rev"))

    for account in Account.objects.all():
        assert account.balance == account.normal * postings_sum(account), account
        assert account.balance >= 0
    assert balances_for(enterprise=c) == {code: 100_00 for code in ("HKD", "USD", "CNH")}
    assert ledger_verify().ok


# --- PostgreSQL's last line of defence, with raw SQL -------------------------------------------------


@pytest.fixture
def posted_entry(make_enterprise, mint, wallet, transfer) -> int:
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "10.00")
    return transfer(wallet(payer), wallet(payee), 5_00).entry_id


def raw(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE settlement_journalentry SET memo = 'edited' WHERE id = %s",
        "UPDATE settlement_journalentry SET content_hash = 'x' WHERE id = %s",
        "DELETE FROM settlement_journalentry WHERE id = %s",
        "UPDATE settlement_posting SET amount = amount * 2 WHERE entry_id = %s",
        "UPDATE settlement_posting SET account_id = account_id WHERE entry_id = %s",
        "DELETE FROM settlement_posting WHERE entry_id = %s",
    ],
)
def test_the_database_refuses_to_change_or_delete_entries_and_postings(posted_entry, state, sql):
    before = state()

    with pytest.raises(DatabaseError, match="hl_ledger:immutable"), transaction.atomic():
        raw(sql, [posted_entry])

    assert state() == before


def test_the_orm_cannot_change_an_entry_either(posted_entry):
    entry = JournalEntry.objects.get(pk=posted_entry)
    entry.memo = "edited"

    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        entry.save()
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        entry.postings.first().delete()


def _raw_entry(key: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO settlement_journalentry"
            " (public_id, idempotency_key, content_hash, kind, memo, metadata, created_at)"
            " VALUES (%s, %s, 'x', 'transfer', '', '{}', now()) RETURNING id",
            [f"je_{key}", key],
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("amounts", "error"),
    [
        pytest.param([(0, "HKD", 100), (1, "HKD", -99)], "entry_unbalanced", id="off-by-one"),
        pytest.param([(0, "HKD", 100)], "entry_unbalanced", id="a-single-posting"),
        pytest.param([(0, "HKD", 100), (1, "HKD", -100), (0, "HKD", 1)], "entry_unbalanced", id="three-legs"),
        pytest.param([(0, "HKD", 100), (2, "USD", -100)], "entry_unbalanced", id="balanced-only-across-currencies"),
        pytest.param([(0, "USD", 100), (2, "USD", -100)], "currency_mismatch", id="posting-in-another-currency"),
    ],
)
def test_the_database_refuses_unbalanced_postings_inserted_directly(make_enterprise, wallet, state, amounts, error):
    payer, payee = make_enterprise(), make_enterprise()
    accounts = [wallet(payer, "HKD").id, wallet(payee, "HKD").id, wallet(payee, "USD").id]
    before = state()

    with pytest.raises(DatabaseError, match=f"hl_ledger:{error}"), transaction.atomic():
        entry_id = _raw_entry("raw-1")
        values = ", ".join(["(%s, %s, %s, %s)"] * len(amounts))
        params = [p for index, currency, amount in amounts for p in (entry_id, accounts[index], currency, amount)]
        raw(f"INSERT INTO settlement_posting (entry_id, account_id, currency, amount) VALUES {values}", params)

    assert state() == before


def test_the_database_accepts_balanced_postings_inserted_directly(make_enterprise, wallet):
    """The trigger is not simply refusing every insert (the refusals above mean something)."""
    payer, payee = make_enterprise(), make_enterprise()

    entry_id = _raw_entry("raw-ok")
    raw(
        "INSERT INTO settlement_posting (entry_id, account_id, currency, amount) VALUES (%s, %s, 'HKD', 7), "
        "(%s, %s, 'HKD', -7)",
        [entry_id, wallet(payer).id, entry_id, wallet(payee).id],
    )

    assert Posting.objects.filter(entry_id=entry_id).count() == 2


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        ("UPDATE settlement_account SET balance = -1 WHERE id = %s", "account_balance_not_negative"),
        ("UPDATE settlement_account SET balance = balance - 10001 WHERE id = %s", "account_balance_not_negative"),
        ("UPDATE settlement_account SET currency = 'CNY' WHERE id = %s", "account_currency_valid"),
        ("UPDATE settlement_account SET normal = 1 WHERE id = %s", "account_normal_matches_kind"),
        ("UPDATE settlement_account SET enterprise_id = NULL WHERE id = %s", "account_owner_matches_kind"),
    ],
)
def test_the_database_refuses_a_negative_balance_and_other_impossible_accounts(
    make_enterprise, mint, wallet, state, sql, constraint
):
    enterprise = make_enterprise()
    mint(enterprise, "100.00")
    before = state()

    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        raw(sql, [wallet(enterprise).id])

    assert state() == before


def test_the_database_refuses_a_zero_posting(make_enterprise, wallet):
    payer, payee = make_enterprise(), make_enterprise()

    with pytest.raises(IntegrityError, match="posting_amount_not_zero"), transaction.atomic():
        entry_id = _raw_entry("raw-zero")
        raw(
            "INSERT INTO settlement_posting (entry_id, account_id, currency, amount) VALUES (%s, %s, 'HKD', 0), "
            "(%s, %s, 'HKD', 0)",
            [entry_id, wallet(payer).id, entry_id, wallet(payee).id],
        )


# --- the journal's references, proven per statement (migration 0014) ------------------------------


def test_the_database_refuses_a_posting_for_a_missing_entry(make_enterprise, wallet, state):
    payer, payee = make_enterprise(), make_enterprise()
    before = state()

    with pytest.raises(IntegrityError, match="hl_ledger:entry_not_found:999999999"), transaction.atomic():
        raw(
            "INSERT INTO settlement_posting (entry_id, account_id, currency, amount)"
            " VALUES (999999999, %s, 'HKD', 7), (999999999, %s, 'HKD', -7)",
            [wallet(payer).id, wallet(payee).id],
        )

    assert state() == before


def test_the_database_refuses_a_posting_on_a_missing_account(make_enterprise, wallet, state):
    payer = make_enterprise()
    before = state()

    with pytest.raises(IntegrityError, match="hl_ledger:account_not_found:999999999"), transaction.atomic():
        entry_id = _raw_entry("raw-no-account")
        raw(
            "INSERT INTO settlement_posting (entry_id, account_id, currency, amount)"
            " VALUES (%s, %s, 'HKD', 7), (%s, 999999999, 'HKD', -7)",
            [entry_id, wallet(payer).id, entry_id],
        )

    assert state() == before


def test_the_database_refuses_a_reversal_of_a_missing_entry(platform, state):
    before = state()

    with pytest.raises(IntegrityError, match="hl_ledger:entry_not_found:999999999"), transaction.atomic():
        raw(
            "INSERT INTO settlement_journalentry"
            " (public_id, idempotency_key, content_hash, kind, memo, metadata, reverses_id, created_at)"
            " VALUES ('je_x', 'k', 'x', 'reversal', '', '{}', 999999999, now())"
        )

    assert state() == before


@pytest.mark.parametrize(
    "sql",
    ["DELETE FROM settlement_account WHERE id = %s", "UPDATE settlement_account SET id = id + 1000000 WHERE id = %s"],
)
def test_the_database_refuses_to_delete_or_renumber_an_account_with_postings(posted_entry, state, sql):
    account_id = Posting.objects.filter(entry_id=posted_entry).values_list("account_id", flat=True).first()
    before = state()

    with pytest.raises(IntegrityError, match="hl_ledger:account_has_postings"), transaction.atomic():
        raw(sql, [account_id])

    assert state() == before


def test_an_account_without_postings_may_still_be_deleted(make_enterprise, wallet):
    account = wallet(make_enterprise(), "CNH")

    raw("DELETE FROM settlement_account WHERE id = %s", [account.id])

    assert not Account.objects.filter(pk=account.id).exists()

"""Payouts through their lifecycle, external accounts, balances and inbound wires, over real HTTP."""

from __future__ import annotations

import time

import pytest

from settlement.rails import RailsInvalidRequest, RailsNotFound

pytestmark = pytest.mark.integration

OPENING = 100_000_000


def wait_for_status(rails, payout_id: str, statuses: set[str], timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        payout = rails.payout_retrieve(payout_id=payout_id)
        if not seen or seen[-1] != payout.status:
            seen.append(payout.status)
        if payout.status in statuses:
            return payout, seen
        assert time.monotonic() < deadline, f"payout still {payout.status}; seen {seen}"
        time.sleep(0.005)


def register(rails, number: str = "000123456789", currency: str = "HKD"):
    return rails.external_account_create(
        account_number=number,
        currency=currency,
        account_holder_name="Acme Trading Ltd",
        idempotency_key=f"ba:{number}:{currency}",
        metadata={"bank_account_id": "ba_platform_1"},
    )


def test_external_account_is_registered_and_shows_only_the_last_four_digits(banksim):
    with banksim.client() as rails:
        account = register(rails)
        again = rails.external_account_retrieve(bank_account_id=account.id)

    assert account.id.startswith("ba_")
    assert (account.currency, account.last4, account.account_holder_name) == ("HKD", "6789", "Acme Trading Ltd")
    assert account.metadata == {"bank_account_id": "ba_platform_1"}
    assert "000123456789" not in str(account.raw)
    assert again == account


def test_payout_goes_pending_in_transit_paid_and_leaves_the_reserve_exactly(banksim):
    with banksim.client() as rails:
        destination = register(rails).id
        payout = rails.payout_create(
            amount_minor=250_075, currency="HKD", destination=destination, idempotency_key="red_a:payout"
        )
        reserve_after_create = rails.balance_retrieve().available["HKD"]
        paid, seen = wait_for_status(rails, payout.id, {"paid", "failed"})
        reserve_after_paid = rails.balance_retrieve().available["HKD"]
    txns = banksim.http("GET", "/v1/balance_transactions", params={"type": "payout"}).json()["data"]

    assert payout.id.startswith("po_") and payout.status == "pending"
    assert seen[-1] == "paid" and set(seen) <= {"pending", "in_transit", "paid"}
    assert paid.failure_code is None
    assert reserve_after_create == reserve_after_paid == OPENING - 250_075
    assert [(t["amount"], t["source"], t["id"]) for t in txns] == [(-250_075, payout.id, payout.balance_transaction)]


def test_payout_failing_with_the_injected_code_returns_the_money(banksim):
    banksim.faults(fail_payouts="account_closed")
    with banksim.client() as rails:
        destination = register(rails).id
        payout = rails.payout_create(amount_minor=9_999, currency="HKD", destination=destination, idempotency_key="f1")
        banksim.faults(reset=True)  # the failure was decided when the payout was made
        failed, seen = wait_for_status(rails, payout.id, {"paid", "failed"})
        reserve = rails.balance_retrieve().available["HKD"]

    assert failed.status == "failed"
    assert failed.failure_code == "account_closed"
    assert failed.failure_message == "The bank account has been closed."
    assert failed.raw["failure_balance_transaction"].startswith("txn_")
    assert reserve == OPENING


def test_stripes_test_account_numbers_fail_payouts_with_their_codes(banksim):
    with banksim.client() as rails:
        destination = register(rails, number="000111111116").id
        payout = rails.payout_create(amount_minor=500, currency="HKD", destination=destination, idempotency_key="f2")
        failed, _ = wait_for_status(rails, payout.id, {"paid", "failed"})

    assert (failed.status, failed.failure_code) == ("failed", "no_account")


def test_payout_to_an_unknown_or_mismatched_destination_is_refused(banksim):
    with banksim.client() as rails:
        usd_account = register(rails, currency="USD").id
        with pytest.raises(RailsNotFound) as unknown:
            rails.payout_create(amount_minor=1, currency="HKD", destination="ba_nope", idempotency_key="d1")
        with pytest.raises(RailsInvalidRequest) as mismatch:
            rails.payout_create(amount_minor=1, currency="HKD", destination=usd_account, idempotency_key="d2")

    assert (unknown.value.bank_status, unknown.value.stripe_code, unknown.value.param) == (
        400,
        "resource_missing",
        "destination",
    )
    assert mismatch.value.param == "destination"
    assert banksim.payouts_count() == 0


def test_payout_above_the_reserve_is_refused_with_balance_insufficient(banksim):
    with banksim.client() as rails:
        destination = register(rails, currency="CNH").id
        with pytest.raises(RailsInvalidRequest) as caught:
            rails.payout_create(amount_minor=OPENING + 1, currency="CNH", destination=destination, idempotency_key="x")
        reserve = rails.balance_retrieve().available["CNH"]

    assert caught.value.stripe_code == "balance_insufficient"
    assert reserve == OPENING


def test_pending_payout_can_be_cancelled_and_the_money_returns(banksim_factory):
    bank = banksim_factory(opening_balances={"usd": 1_000}, transit_delay_ms=60_000)
    with bank.client() as rails:
        destination = register(rails, currency="USD").id
        payout = rails.payout_create(amount_minor=400, currency="USD", destination=destination, idempotency_key="c")
        cancelled = rails.payout_cancel(payout_id=payout.id, idempotency_key="c:cancel")
        reserve = rails.balance_retrieve().available["USD"]

    assert cancelled.status == "canceled"
    assert reserve == 1_000


def test_a_paid_payout_returned_later_fails_credits_the_balance_back_and_says_so_once(banksim):
    with banksim.client() as rails:
        destination = register(rails).id
        payout = rails.payout_create(amount_minor=12_345, currency="HKD", destination=destination, idempotency_key="r")
        with pytest.raises(RailsInvalidRequest) as not_yet:  # only a paid payout can come back
            rails.test_payout_return(payout_id=payout.id, idempotency_key="r:early")
        wait_for_status(rails, payout.id, {"paid"})
        paid_reserve = rails.balance_retrieve().available["HKD"]
        returned = rails.test_payout_return(payout_id=payout.id, idempotency_key="r:return")
        replayed = rails.test_payout_return(payout_id=payout.id, idempotency_key="r:return")
        with pytest.raises(RailsInvalidRequest) as twice:
            rails.test_payout_return(payout_id=payout.id, idempotency_key="r:again")
        with pytest.raises(RailsInvalidRequest) as bad_code:
            rails.test_payout_return(payout_id=payout.id, idempotency_key="r:bad", failure_code="lost_at_sea")
        reserve = rails.balance_retrieve().available["HKD"]
        again = rails.payout_retrieve(payout_id=payout.id)
    events = banksim.http("GET", "/v1/events", params={"limit": 100}).json()["data"]
    txns = banksim.http("GET", "/v1/balance_transactions", params={"type": "payout_failure"}).json()["data"]

    assert not_yet.value.stripe_code == "payout_not_paid"
    assert (returned.status, returned.failure_code) == ("failed", "account_closed")
    assert returned.failure_message == "The bank account has been closed."
    assert replayed == returned and again.status == "failed"
    assert twice.value.stripe_code == "payout_not_paid" and bad_code.value.param == "failure_code"
    assert paid_reserve == OPENING - 12_345 and reserve == OPENING
    assert [(t["amount"], t["source"]) for t in txns] == [(12_345, payout.id)]
    assert returned.raw["failure_balance_transaction"] == txns[0]["id"]
    terminal = [e["type"] for e in reversed(events) if e["type"] in ("payout.paid", "payout.failed")]
    assert terminal == ["payout.paid", "payout.failed"]


def test_inbound_wire_raises_the_reserve_and_payouts_lower_it(banksim_factory):
    bank = banksim_factory()
    with bank.client() as rails:
        empty = rails.balance_retrieve()
        wire = rails.test_inbound_wire(
            amount_minor=1_000_000, currency="CNH", reference="HLDEP-ENT1-CNH", idempotency_key="wire-1"
        )
        destination = register(rails, currency="CNH").id
        rails.payout_create(amount_minor=300_001, currency="CNH", destination=destination, idempotency_key="p")
        after = rails.balance_retrieve()
    events = bank.http("GET", "/v1/events", params={"type": "inbound_wire.received"}).json()["data"]

    assert empty.available == {"CNH": 0, "HKD": 0, "USD": 0}
    assert wire.id.startswith("iw_")
    assert (wire.amount_minor, wire.currency, wire.reference, wire.status) == (
        1_000_000,
        "CNH",
        "HLDEP-ENT1-CNH",
        "succeeded",
    )
    assert after.available == {"CNH": 699_999, "HKD": 0, "USD": 0}
    assert [e["data"]["object"]["id"] for e in events] == [wire.id]


def test_many_payouts_list_completely_across_pages(banksim):
    with banksim.client() as rails:
        destination = register(rails).id
        made = {
            rails.payout_create(amount_minor=n, currency="HKD", destination=destination, idempotency_key=f"m{n}").id
            for n in range(1, 13)
        }
        page = rails.payouts_list(limit=5)
        listed = [p.id for p in rails.payouts_iter(page_size=5)]

    assert page.has_more and len(page.data) == 5
    assert set(listed) == made and len(listed) == 12


def test_state_survives_a_restart_of_the_bank(banksim_factory, tmp_path):
    db_path = tmp_path / "persistent.sqlite3"
    first = banksim_factory(db_path=db_path, opening_balances={"hkd": 5_000})
    with first.client() as rails:
        destination = register(rails).id
        payout = rails.payout_create(amount_minor=1_234, currency="HKD", destination=destination, idempotency_key="r")
        wait_for_status(rails, payout.id, {"paid"})
    first.stop()

    second = banksim_factory(db_path=db_path, opening_balances={"hkd": 5_000})
    with second.client() as rails:
        replayed = rails.payout_create(amount_minor=1_234, currency="HKD", destination=destination, idempotency_key="r")
        current = rails.payout_retrieve(payout_id=payout.id)
        reserve = rails.balance_retrieve().available["HKD"]

    # A replay returns the first answer as it was (Stripe's rule); the current state is a retrieve away.
    assert (replayed.id, replayed.status) == (payout.id, "pending")
    assert current.status == "paid"
    assert reserve == 5_000 - 1_234  # the opening balance is applied once, to a new database


def test_balance_always_equals_the_sum_of_its_balance_transactions(banksim_factory):
    bank = banksim_factory(opening_balances={"hkd": 50_000}, transit_delay_ms=10, settle_delay_ms=10)
    with bank.client() as rails:
        good = register(rails).id
        closed = register(rails, number="000111111113").id
        rails.test_inbound_wire(amount_minor=7_001, currency="HKD", reference="R", idempotency_key="w1")
        paid = rails.payout_create(amount_minor=3_000, currency="HKD", destination=good, idempotency_key="p1")
        failed = rails.payout_create(amount_minor=4_000, currency="HKD", destination=closed, idempotency_key="p2")
        wait_for_status(rails, paid.id, {"paid"})
        wait_for_status(rails, failed.id, {"failed"})
        balance = rails.balance_retrieve()
    txns = bank.http("GET", "/v1/balance_transactions", params={"limit": 100}).json()["data"]

    assert sorted((t["type"], t["amount"]) for t in txns) == [
        ("adjustment", 50_000),
        ("inbound_wire", 7_001),
        ("payout", -4_000),
        ("payout", -3_000),
        ("payout_failure", 4_000),
    ]
    assert balance.available["HKD"] == sum(t["amount"] for t in txns) == 50_000 + 7_001 - 3_000

"""Property: any sequence of wires, redemptions and bank outcomes (repeated, contradictory) conserves money.

The bank's events are built here (the webhook view and banksim are covered
elsewhere); they go through ``bank_event_apply``, the view's one call. A
simple model predicts the wallet, and the ledger must agree with it, keep
supply equal to the reserve, and move each redemption at most once.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.bank_events import ALERTED, HANDLED, bank_event_apply
from settlement.deposits.services import deposit_reference_for
from settlement.ledger.models import AccountKind
from settlement.ledger.selectors import ledger_verify, platform_account
from settlement.redemptions.models import Redemption, RedemptionState
from settlement.redemptions.services import Actor, RedemptionInsufficientFunds, redemption_request
from settlement.webhooks_in import BankEvent
from tests.settlement.mintredeem import Redeemer

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)

operations = st.one_of(
    st.tuples(st.just("wire"), st.integers(1, 100_000)),
    st.tuples(st.just("wire_again"), st.integers(0, 20)),
    st.tuples(st.just("redeem"), st.integers(1, 60_000)),
    st.tuples(st.sampled_from(["paid", "failed"]), st.integers(0, 20)),
)


def event(type_: str, obj: dict) -> BankEvent:
    return BankEvent.from_stripe({"id": f"evt_prop_{next(_ids)}", "type": type_, "created": 1, "data": {"object": obj}})


def payout_event(type_: str, redemption: Redemption) -> BankEvent:
    obj = {
        "id": f"po_{redemption.public_id}",
        "amount": redemption.amount,
        "currency": redemption.currency.lower(),
        "metadata": {"redemption": redemption.public_id},
    }
    if type_ == "payout.failed":
        obj.update(failure_code="account_closed", failure_message="The account is closed.")
    return event(type_, obj)


def balance(kind: str) -> int:
    return platform_account(kind=kind, currency="HKD").balance


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operations, min_size=1, max_size=25))
def test_any_sequence_of_wires_redemptions_and_outcomes_conserves_money(make_enterprise, ops):
    party = Redeemer(make_enterprise())
    account = party.account("HKD")
    reference = deposit_reference_for(enterprise=party.enterprise, currency="HKD").reference
    reserve_before, in_transit_before = balance(AccountKind.RESERVE), balance(AccountKind.REDEMPTION_IN_TRANSIT)
    wires: list[BankEvent] = []
    redemptions: list[Redemption] = []
    # redemption pk -> where the bank's reports left it: paid, failed, or returned (failed after paid)
    outcome: dict[int, str] = {}
    minted = 0

    for op, value in ops:
        if op == "wire":
            wire = event("inbound_wire.received", {"id": f"iw_{next(_ids)}", "amount": value, "currency": "hkd",
                                                   "reference": reference})  # fmt: skip
            wires.append(wire)
            assert bank_event_apply(event=wire) == HANDLED
            minted += value
        elif op == "wire_again" and wires:
            assert bank_event_apply(event=wires[value % len(wires)]) == HANDLED  # a repeat mints nothing
        elif op == "redeem":
            amount = f"{value // 100}.{value % 100:02d}"
            try:
                redemption = redemption_request(
                    enterprise=party.enterprise, amount=amount, currency="HKD", bank_account=account,
                    actor=Actor(user=party.maker),
                )  # fmt: skip
            except RedemptionInsufficientFunds:
                assert value > party.wallet()
                continue
            assert redemption.state == RedemptionState.PROCESSING
            redemptions.append(redemption)
        elif op in ("paid", "failed") and redemptions:
            redemption = redemptions[value % len(redemptions)]
            result = bank_event_apply(event=payout_event(f"payout.{op}", redemption))
            now = outcome.get(redemption.pk)
            if now == "failed" and op == "paid":
                assert result == ALERTED  # a contradiction changes nothing
                continue
            assert result == HANDLED
            if now is None:
                outcome[redemption.pk] = op
            elif now == "paid" and op == "failed":
                outcome[redemption.pk] = "returned"  # the funds came back: the tokens are minted again

    redeemed = sum(r.amount for r in redemptions)
    returned = sum(r.amount for r in redemptions if outcome.get(r.pk) in ("failed", "returned"))
    paid_out = sum(r.amount for r in redemptions if outcome.get(r.pk) == "paid")
    assert party.wallet() == minted - redeemed + returned
    states = dict(Redemption.objects.filter(enterprise=party.enterprise).values_list("pk", "state"))
    for redemption in redemptions:
        expected = {
            "paid": RedemptionState.PAID,
            "failed": RedemptionState.FAILED,
            "returned": RedemptionState.RETURNED,
        }.get(outcome.get(redemption.pk, ""), RedemptionState.PROCESSING)
        assert states[redemption.pk] == expected
    processing = sum(r.amount for r in redemptions if states[r.pk] == RedemptionState.PROCESSING)
    assert balance(AccountKind.REDEMPTION_IN_TRANSIT) - in_transit_before == processing
    # Out of the wallet = paid out = reserve decrease: no fee anywhere.
    assert balance(AccountKind.RESERVE) - reserve_before == minted - paid_out
    report = ledger_verify()
    assert report.ok, report.breaches

import pytest

from settlement.ledger.models import EntryKind
from settlement.ledger.selectors import balances_for, ledger_verify, wallet_for
from settlement.ledger.services import InsufficientFunds, ledger_post, legs_debit_credit


def test_transfer_moves_funds_and_keeps_invariants(make_enterprise, mint, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "100.00", "CNH")

    ledger_post(
        idempotency_key="t-1",
        kind=EntryKind.TRANSFER,
        legs=legs_debit_credit(
            debit=wallet_for(enterprise=payer, currency="CNH"),
            credit=wallet_for(enterprise=payee, currency="CNH"),
            minor=4_000,
        ),
    )

    assert balances_for(enterprise=payer)["CNH"] == 6_000
    assert balances_for(enterprise=payee)["CNH"] == 4_000
    assert ledger_verify().ok


def test_overdraft_is_refused(make_enterprise, mint, ledger_path):
    payer, payee = make_enterprise(), make_enterprise()
    mint(payer, "10.00")
    with pytest.raises(InsufficientFunds):
        ledger_post(
            idempotency_key="t-2",
            kind=EntryKind.TRANSFER,
            legs=legs_debit_credit(
                debit=wallet_for(enterprise=payer, currency="HKD"),
                credit=wallet_for(enterprise=payee, currency="HKD"),
                minor=1_001,
            ),
        )
    assert balances_for(enterprise=payer)["HKD"] == 1_000

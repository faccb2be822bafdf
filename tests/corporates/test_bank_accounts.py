"""Bank accounts: registration (validated, screened), verification by the back office, the payout gate."""

import threading

import pytest
from django.db import connection

from corporates.models import BankAccount, BankAccountStatus, EnterpriseStatus
from corporates.onboarding.banking import (
    BankAccountCurrencyMismatch,
    BankAccountDuplicate,
    BankAccountHolderScreening,
    BankAccountNotPayable,
    InvalidBankAccount,
    InvalidBankAccountTransition,
    InvalidIban,
    account_number_parse,
    bank_account_disable,
    bank_account_register,
    bank_account_require_payable,
    bank_account_verify,
)
from corporates.sanctions import sanctions_alert_clear
from tests.concurrency import run_in_threads
from tests.factories import EnterpriseFactory

pytestmark = pytest.mark.django_db


def register(enterprise, **overrides):
    fields = {
        "holder_name": enterprise.legal_name,
        "bank_name": "The Hongkong and Shanghai Banking Corporation",
        "account_number": "004-123-456789-001",
        "currency": "HKD",
    }
    fields.update(overrides)
    return bank_account_register(enterprise=enterprise, **fields)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432"),
        ("de89370400440532013000", "DE89370400440532013000"),
        ("CH9300762011623852957", "CH9300762011623852957"),
    ],
)
def test_valid_ibans_are_normalised(raw, expected):
    parsed = account_number_parse(raw)
    assert (parsed.value, parsed.is_iban) == (expected, True)


@pytest.mark.parametrize("bad", ["GB82WEST12345698765433", "DE89370400440532013001", "GB28WEST12345698765432"])
def test_ibans_with_wrong_check_digits_are_refused(bad):
    with pytest.raises(InvalidIban) as caught:
        account_number_parse(bad)
    assert caught.value.code == "invalid_iban"


def iban_with_check_digits(country: str, bban: str) -> str:
    from corporates.lei import mod97

    return f"{country}{98 - mod97(bban + country + '00'):02d}{bban}"


def test_an_iban_of_the_wrong_length_for_its_country_is_refused():
    valid = iban_with_check_digits("DE", "370400440532013000")
    assert account_number_parse(valid).is_iban
    too_long = iban_with_check_digits("DE", "3704004405320130001")  # right check digits, 23 characters
    with pytest.raises(InvalidIban, match="22 characters"):
        account_number_parse(too_long)


def test_an_iban_shaped_number_from_a_country_without_ibans_is_refused():
    with pytest.raises(InvalidIban, match="does not issue IBANs"):
        account_number_parse(iban_with_check_digits("ZZ", "12345678901234"))


def test_plain_account_numbers_are_accepted():
    parsed = account_number_parse("004-123-456789-001")
    assert (parsed.value, parsed.is_iban) == ("004123456789001", False)


@pytest.mark.parametrize("bad", ["", "12", "12$4567", "12.34567", "1" * 35])
def test_malformed_account_numbers_are_refused(bad):
    with pytest.raises(InvalidBankAccount):
        account_number_parse(bad)


def test_register_verify_then_payable(make_enterprise, back_office):
    enterprise = make_enterprise()
    account = register(enterprise, account_number="GB82 WEST 1234 5698 7654 32", currency="USD")
    assert account.public_id.startswith("ba_")
    assert (account.status, account.is_iban) == (BankAccountStatus.PENDING, True)

    with pytest.raises(BankAccountNotPayable) as caught:
        bank_account_require_payable(bank_account=account, currency="USD")
    assert caught.value.code == "bank_account_not_verified"

    verified = bank_account_verify(bank_account=account, actor=back_office)
    assert (verified.status, verified.verified_by) == (BankAccountStatus.VERIFIED, back_office)
    bank_account_require_payable(bank_account=account, currency="USD")
    with pytest.raises(BankAccountCurrencyMismatch):
        bank_account_require_payable(bank_account=account, currency="HKD")


def test_a_disabled_account_is_not_payable_even_through_a_stale_instance(make_enterprise, back_office):
    account = register(make_enterprise())
    stale = bank_account_verify(bank_account=account, actor=back_office)
    bank_account_disable(bank_account=account, reason="Customer closed the account", actor=back_office)
    assert stale.status == BankAccountStatus.VERIFIED  # the caller's copy is out of date…
    with pytest.raises(BankAccountNotPayable):
        bank_account_require_payable(bank_account=stale, currency="HKD")  # …the guard reads the row


def test_verification_transitions(make_enterprise, back_office):
    account = register(make_enterprise())
    bank_account_verify(bank_account=account, actor=back_office)
    with pytest.raises(InvalidBankAccountTransition):
        bank_account_verify(bank_account=account, actor=back_office)
    bank_account_disable(bank_account=account, reason="closed", actor=back_office)
    with pytest.raises(InvalidBankAccountTransition):
        bank_account_verify(bank_account=account, actor=back_office)
    with pytest.raises(InvalidBankAccountTransition):
        bank_account_disable(bank_account=account, reason="again", actor=back_office)


def test_holder_name_is_screened_and_an_open_alert_blocks_verification(make_enterprise, sanctions_list, back_office):
    enterprise = make_enterprise()
    account = register(enterprise, holder_name="SOREN AKERLUND")
    alert = enterprise.sanctions_alerts.get()
    assert alert.party_ref == account.public_id

    with pytest.raises(BankAccountHolderScreening):
        bank_account_verify(bank_account=account, actor=back_office)
    sanctions_alert_clear(alert=alert, reason="Different person, DOB differs", actor=back_office)
    assert bank_account_verify(bank_account=account, actor=back_office).status == BankAccountStatus.VERIFIED


def test_duplicate_live_registration_is_refused_but_a_disabled_one_can_be_registered_again(make_enterprise):
    enterprise = make_enterprise()
    first = register(enterprise)
    with pytest.raises(BankAccountDuplicate):
        register(enterprise, account_number="004 123 456789 001")
    register(enterprise, currency="USD")  # same number, another currency: a separate account
    bank_account_disable(bank_account=first, reason="re-registering")
    assert register(enterprise).status == BankAccountStatus.PENDING


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"holder_name": " "}, InvalidBankAccount),
        ({"bank_name": ""}, InvalidBankAccount),
        ({"currency": "EUR"}, InvalidBankAccount),
        ({"account_number": "GB00WEST12345698765432"}, InvalidIban),
    ],
)
def test_bad_registrations_are_refused(make_enterprise, override, error):
    enterprise = make_enterprise()
    with pytest.raises(error):
        register(enterprise, **override)
    assert not BankAccount.objects.exists()


def test_a_rejected_enterprise_registers_no_account(db):
    with pytest.raises(InvalidBankAccountTransition):
        register(EnterpriseFactory(status=EnterpriseStatus.REJECTED))


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_registrations_store_one(platform):
    from corporates.services import enterprise_approve

    enterprise = enterprise_approve(enterprise=EnterpriseFactory())
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            barrier.wait()
            register(enterprise)
            outcomes.append("ok")
        except BankAccountDuplicate:
            outcomes.append("duplicate")
        finally:
            connection.close()

    run_in_threads(attempt, 4)

    assert sorted(outcomes) == ["duplicate", "duplicate", "duplicate", "ok"]
    assert BankAccount.objects.filter(enterprise=enterprise).count() == 1

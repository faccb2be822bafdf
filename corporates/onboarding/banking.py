"""Bank accounts for redemption payouts: register (screened), verify (back office), disable.

Only a verified, live account in the payout's currency receives money;
``bank_account_require_payable`` is the guard the redemption service calls.

Who may act is checked here, not only in the views, because the same
services serve the portal, the API and admin. ``actor`` is a user, an ERP
``ApiKey`` (register only), or None for the platform itself (sanctions
decisions, demo data, callers that have authorised the request already).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError
from django.utils import timezone

from config import money
from config.db import run_in_transaction
from config.errors import DomainError
from corporates.lei import mod97
from corporates.models import (
    AlertStatus,
    ApiKey,
    ApiScope,
    BankAccount,
    BankAccountStatus,
    Enterprise,
    EnterpriseStatus,
    SanctionsAlert,
)
from corporates.onboarding.status import reason_require
from corporates.permissions import RoleNotPermitted, back_office_require, enterprise_admin_require

# Two letters (country), two check digits, then up to 30 letters/digits.
_IBAN_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
# ISO 13616 IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
# Many payout countries (Hong Kong among them) use plain account numbers.
_ACCOUNT_NUMBER = re.compile(r"^[0-9A-Z]{4,34}$")


class InvalidBankAccount(DomainError):
    code = "invalid_bank_account"
    title = "The bank account details are not valid."
    http_status = 400


class InvalidIban(InvalidBankAccount):
    code = "invalid_iban"
    title = "The IBAN's check digits do not match."


class BankAccountDuplicate(DomainError):
    code = "bank_account_duplicate"
    title = "This bank account is already registered for that currency."


class BankAccountNotPayable(DomainError):
    code = "bank_account_not_verified"
    title = "The bank account is not verified (or is disabled) and cannot receive a payout."


class BankAccountCurrencyMismatch(DomainError):
    code = "bank_account_currency_mismatch"
    title = "The bank account is held in another currency."


class InvalidBankAccountTransition(DomainError):
    code = "invalid_bank_account_transition"
    title = "The bank account cannot change to that state from its current one."


class BankAccountHolderScreening(DomainError):
    code = "bank_account_holder_alert_open"
    title = "The account holder's name has a sanctions alert awaiting review."


@dataclass(frozen=True)
class AccountNumber:
    value: str
    is_iban: bool


def account_number_parse(raw: str) -> AccountNumber:
    """Strip spaces and hyphens; when it looks like an IBAN, require its country's length and check digits.

    Spaces and hyphens are only grouping ("004-123-456789-001" in Hong Kong),
    so the stored form without them also finds duplicates however typed.
    """
    compact = re.sub(r"[\s-]+", "", raw or "").upper()
    if _IBAN_SHAPE.fullmatch(compact):
        country = compact[:2]
        if country not in IBAN_LENGTHS:
            raise InvalidIban(f"{country} does not issue IBANs.")
        if len(compact) != IBAN_LENGTHS[country]:
            raise InvalidIban(f"An IBAN from {country} has {IBAN_LENGTHS[country]} characters, not {len(compact)}.")
        # ISO 13616: move the country code and check digits to the end; the number mod 97 is 1.
        if mod97(compact[4:] + compact[:4]) != 1:
            raise InvalidIban(f"{compact[:4]}… fails the IBAN check.")
        return AccountNumber(value=compact, is_iban=True)
    if not _ACCOUNT_NUMBER.fullmatch(compact):
        raise InvalidBankAccount(
            "An account number is 4–34 letters or digits (spaces and hyphens allowed).", field="account_number"
        )
    return AccountNumber(value=compact, is_iban=False)


def _registrar_require(actor: AbstractBaseUser | ApiKey | None, enterprise_id: int) -> None:
    """An admin of the enterprise, or its ERP key with the redemptions scope (payouts are what accounts are for)."""
    if actor is None:
        return
    if isinstance(actor, ApiKey):
        if actor.enterprise_id != enterprise_id or not actor.is_active or not actor.has_scope(ApiScope.REDEMPTIONS):
            raise RoleNotPermitted(
                "The API key belongs to another enterprise, is revoked or lacks the redemptions scope."
            )
        return
    enterprise_admin_require(actor=actor, enterprise_id=enterprise_id)


def bank_account_register(
    *,
    enterprise: Enterprise,
    holder_name: str,
    bank_name: str,
    account_number: str,
    currency: str,
    actor: AbstractBaseUser | ApiKey | None = None,
) -> BankAccount:
    """Register an account (pending verification) and screen its holder's name in the same transaction.

    A user ``actor`` must be an admin of ``enterprise``; an ``ApiKey`` must be
    the enterprise's, live, with the redemptions scope (``RoleNotPermitted``).
    """
    from corporates.sanctions import sanctions_screen_bank_account

    holder_name = (holder_name or "").strip()
    bank_name = (bank_name or "").strip()
    if not holder_name:
        raise InvalidBankAccount("The holder's name is required.", field="holder_name")
    if not bank_name:
        raise InvalidBankAccount("The bank's name is required.", field="bank_name")
    try:
        currency = money.parse_currency(currency)
    except money.MoneyParseError as exc:
        raise InvalidBankAccount(exc.message, field="currency")
    number = account_number_parse(account_number)

    def register() -> BankAccount:
        locked = Enterprise.objects.select_for_update().get(pk=enterprise.pk)
        _registrar_require(actor, locked.pk)
        if locked.status == EnterpriseStatus.REJECTED:
            raise InvalidBankAccountTransition(f"{locked.legal_name} was rejected; it registers no bank account.")
        duplicate = BankAccount.objects.filter(
            enterprise=locked, account_number=number.value, currency=currency
        ).exclude(status=BankAccountStatus.DISABLED)
        if duplicate.exists():
            raise BankAccountDuplicate()
        account = BankAccount.objects.create(
            enterprise=locked,
            holder_name=holder_name,
            bank_name=bank_name,
            account_number=number.value,
            is_iban=number.is_iban,
            currency=currency,
        )
        sanctions_screen_bank_account(bank_account=account)
        return account

    try:
        return run_in_transaction(register)
    except IntegrityError as exc:  # a concurrent registration of the same account won the race
        raise BankAccountDuplicate() from exc


def bank_account_verify(*, bank_account: BankAccount, actor: AbstractBaseUser | None = None) -> BankAccount:
    """pending → verified (back office), unless the holder's name awaits sanctions review.

    A user ``actor`` must be back-office staff: an enterprise never verifies its own payee.
    """
    if actor is not None:
        back_office_require(actor=actor)

    def verify() -> BankAccount:
        locked = BankAccount.objects.select_for_update().get(pk=bank_account.pk)
        if locked.status != BankAccountStatus.PENDING:
            raise InvalidBankAccountTransition(f"Bank account {locked.public_id} is {locked.status}.")
        if SanctionsAlert.objects.filter(party_ref=locked.public_id, status=AlertStatus.OPEN).exists():
            raise BankAccountHolderScreening()
        locked.status = BankAccountStatus.VERIFIED
        locked.verified_at = timezone.now()
        locked.verified_by = actor
        locked.save(update_fields=["status", "verified_at", "verified_by"])
        return locked

    return run_in_transaction(verify)


def bank_account_disable(
    *, bank_account: BankAccount, reason: str, actor: AbstractBaseUser | None = None
) -> BankAccount:
    """Any live account → disabled, for good (register it again to use it again).

    A user ``actor`` must be back-office staff or an admin of the account's enterprise.
    """
    reason = reason_require(reason)

    def disable() -> BankAccount:
        locked = BankAccount.objects.select_for_update().get(pk=bank_account.pk)
        if actor is not None and not (actor.is_active and actor.is_staff):
            enterprise_admin_require(actor=actor, enterprise_id=locked.enterprise_id)
        if locked.status == BankAccountStatus.DISABLED:
            raise InvalidBankAccountTransition(f"Bank account {locked.public_id} is already disabled.")
        locked.status = BankAccountStatus.DISABLED
        locked.disabled_at = timezone.now()
        locked.disabled_reason = f"{reason} (by {actor.get_username() if actor else 'system'})"
        locked.save(update_fields=["status", "disabled_at", "disabled_reason"])
        return locked

    return run_in_transaction(disable)


def bank_account_require_payable(*, bank_account: BankAccount, currency: str, fresh: bool = False) -> None:
    """The payout guard: raise unless the account is verified and held in ``currency``.

    Reads the row afresh, so a caller holding a stale instance cannot pay an
    account the back office has just disabled (``fresh``: the caller has just
    read ``bank_account``'s status and currency in this transaction). Call it
    inside the payout's transaction (and ``enterprise_require_active`` for its owner).
    """
    current = bank_account if fresh else BankAccount.objects.get(pk=bank_account.pk)
    if current.status != BankAccountStatus.VERIFIED:
        raise BankAccountNotPayable(f"Bank account {current.public_id} is {current.get_status_display().lower()}.")
    if current.currency != currency:
        raise BankAccountCurrencyMismatch(f"Bank account {current.public_id} is held in {current.currency}.")

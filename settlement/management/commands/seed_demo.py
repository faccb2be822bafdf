"""python manage.py seed_demo — the demo data `make run` starts with. Safe to run again.

Platform accounts; three approved enterprises holding HKD, USD and CNH (minted
through the ledger, so the reserve backs them); the platform's FX inventory;
one portal login per enterprise and one back-office login; the shipped
(fictitious) sanctions list, so that screening works from the first start.
"""

import base64

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from config import money
from corporates.models import BankAccount, Enterprise, EnterpriseStatus, MemberRole, Membership
from corporates.onboarding.banking import bank_account_register, bank_account_verify
from corporates.sanctions import sanctions_list_ensure
from corporates.services import enterprise_approve, enterprise_create
from settlement.ledger.models import AccountKind, EntryKind
from settlement.ledger.selectors import platform_account, wallet_for
from settlement.ledger.services import ledger_post, legs_debit_credit, platform_accounts_open

DEMO_PASSWORD = "harbourline-demo"  # noqa: S105 - demo data, printed by make run
BACKOFFICE_LOGIN = ("backoffice", DEMO_PASSWORD)
# Every demo portal login has an authenticator with this fixed key (base32),
# printed by make run: add it to any TOTP app, or run `manage.py demo_totp`.
DEMO_TOTP_SECRET = "HARBOURLINEDEMOTOTPSECRETKEY2345"  # noqa: S105 - demo data, printed by make run

# legal name, registration number, jurisdiction, login, opening balances
DEMO_ENTERPRISES = [
    (
        "Victoria Harbour Trading Ltd",
        "HK-2301001",
        "HK",
        "finance@victoria-harbour.example",
        {"HKD": "2500000.00", "USD": "400000.00", "CNH": "1800000.00"},
    ),
    (
        "Pearl River Components Co",
        "CN-4403002",
        "CN",
        "treasury@pearl-river.example",
        {"HKD": "900000.00", "USD": "150000.00", "CNH": "5200000.00"},
    ),
    (
        "Kowloon Freight Forwarding Ltd",
        "HK-2301003",
        "HK",
        "ap@kowloon-freight.example",
        {"HKD": "1200000.00", "USD": "250000.00", "CNH": "600000.00"},
    ),
]
# What the platform holds to make FX swaps.
FX_INVENTORY = {"HKD": "50000000.00", "USD": "6500000.00", "CNH": "45000000.00"}


class Command(BaseCommand):
    help = "Seed the demo data (idempotent)."

    def handle(self, *args, **options):
        with transaction.atomic():
            platform_accounts_open()
            for code, amount in FX_INVENTORY.items():
                self._mint(
                    f"demo:fx-inventory:{code}",
                    platform_account(kind=AccountKind.FX_INVENTORY, currency=code),
                    code,
                    amount,
                )
            for legal_name, registration, jurisdiction, login, balances in DEMO_ENTERPRISES:
                enterprise = self._enterprise(legal_name, registration, jurisdiction)
                self._member(enterprise, login)
                for code, amount in balances.items():
                    wallet = wallet_for(enterprise=enterprise, currency=code)
                    self._mint(f"demo:opening:{enterprise.registration_number}:{code}", wallet, code, amount)
                self._bank_accounts(enterprise)
            self._backoffice()
            # After the enterprises, so that loading screens them too; loaded once per file content.
            sanctions_list_ensure(path=settings.SANCTIONS_LIST_PATH)
        self.stdout.write(self.style.SUCCESS("demo data ready"))

    def _bank_accounts(self, enterprise):
        """A verified account per currency, so that a demo user can redeem at once."""
        for code in money.CURRENCY_CODES:
            if BankAccount.objects.filter(enterprise=enterprise, currency=code).exists():
                continue
            account = bank_account_register(
                enterprise=enterprise,
                holder_name=enterprise.legal_name,
                bank_name="Harbour Commercial Bank (demo)",
                account_number=f"{enterprise.registration_number[-4:]}{money.CURRENCY_CODES.index(code)}00123456",
                currency=code,
            )
            bank_account_verify(bank_account=account)

    def _enterprise(self, legal_name, registration, jurisdiction):
        enterprise = Enterprise.objects.filter(jurisdiction=jurisdiction, registration_number=registration).first()
        if enterprise is None:
            enterprise = enterprise_create(
                legal_name=legal_name, registration_number=registration, jurisdiction=jurisdiction
            )
        if enterprise.status != EnterpriseStatus.APPROVED:
            enterprise = enterprise_approve(enterprise=enterprise)
        return enterprise

    def _member(self, enterprise, login):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=login, defaults={"email": login})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        Membership.objects.get_or_create(user=user, defaults={"enterprise": enterprise, "role": MemberRole.ADMIN})
        # Admins sign in with TOTP: the demo logins share a fixed, printed key.
        self._demo_authenticator(user)

    def _backoffice(self):
        User = get_user_model()
        username, password = BACKOFFICE_LOGIN
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"email": "backoffice@harbourline.example", "is_staff": True, "is_superuser": True},
        )
        if created:
            user.set_password(password)
            user.save()
        # Admin asks staff for a TOTP code too (corporates/admin_site.py): same printed demo key.
        self._demo_authenticator(user)

    def _demo_authenticator(self, user):
        TOTPDevice.objects.get_or_create(
            user=user,
            name="Demo authenticator",
            defaults={"key": base64.b32decode(DEMO_TOTP_SECRET).hex(), "confirmed": True},
        )

    def _mint(self, key, account, code, amount):
        reserve = platform_account(kind=AccountKind.RESERVE, currency=code)
        minor = money.to_minor(money.parse_amount(amount, code), code)
        ledger_post(
            idempotency_key=key,
            kind=EntryKind.MINT,
            legs=legs_debit_credit(debit=reserve, credit=account, minor=minor),
            memo="Demo opening balance",
        )

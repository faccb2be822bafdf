"""End to end in a real browser (Debian's chromium, headless).

An enterprise applies through the portal's form, the back office approves it
in Django admin, the applicant (its first admin) signs in with password and
TOTP and sees its balances.
"""

from __future__ import annotations

import base64
import re

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from corporates.lei import lei_check_digits
from corporates.models import Enterprise, EnterpriseStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

APPLICANT = "cfo@lantau-ship-supply.example"
APPLICANT_PASSWORD = "Kap-Shui-Mun-2026!"
BACKOFFICE = ("reviewer@harbourline.example", "Back-office-review-77")
LEI_PREFIX = "5299004LANTAU0SHIP"  # 18 characters; the check digits follow (ISO 17442)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def code_for(secret: str, *, steps_ahead: int = 0) -> str:
    """What the member's authenticator app shows for the key the set-up page printed."""
    totp = TOTP(base64.b32decode(secret.replace(" ", "")))
    totp.time = totp.time + steps_ahead * totp.step
    return f"{totp.token():06d}"


def apply_through_the_form(page) -> None:
    page.goto("/apply/")
    form = page.get_by_test_id("application-form")
    form.get_by_label("Legal name").fill("Lantau Ship Supply Ltd")
    form.get_by_label("Registration number").fill("HK-7700123")
    form.get_by_label("Jurisdiction").fill("HK")
    form.get_by_label("Registered address").fill("8 Tung Chung Waterfront Road, Lantau, Hong Kong")
    form.get_by_label("LEI").fill(LEI_PREFIX + lei_check_digits(LEI_PREFIX))
    form.get_by_label("Contact name").fill("Mei Ling Chan")
    form.get_by_label("Contact email").fill("compliance@lantau-ship-supply.example")
    form.get_by_label("Contact phone").fill("+852 2100 7700")
    form.get_by_label("Expected monthly volume in HKD").fill("3000000.00")
    form.get_by_label("Expected monthly volume in USD").fill("400000.00")
    page.locator("input[name='owners-0-full_name']").fill("Mei Ling Chan")
    page.locator("input[name='owners-0-nationality']").fill("HK")
    page.locator("input[name='owners-0-ownership_percent']").fill("60")
    page.locator("input[name='certificate_of_incorporation']").set_input_files(
        {"name": "certificate.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    page.locator("input[name='proof_of_address']").set_input_files(
        {"name": "utility-bill.png", "mimeType": "image/png", "buffer": PNG}
    )
    form.get_by_label("Your email").fill(APPLICANT)
    page.locator("input[name='applicant_password']").fill(APPLICANT_PASSWORD)
    page.locator("input[name='applicant_password_confirm']").fill(APPLICANT_PASSWORD)
    form.get_by_role("button", name="Submit application").click()
    page.wait_for_url("**/login/")


def sign_in(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def approve_in_admin(page, enterprise: Enterprise, totp_secret: str) -> None:
    """The back office reviews and approves through Django admin's actions (each asks for a reason).

    Admin asks staff for a TOTP code after the password, like the portal.
    """
    page.goto("/admin/login/?next=/admin/corporates/enterprise/")
    page.locator("#id_username").fill(BACKOFFICE[0])
    page.locator("#id_password").fill(BACKOFFICE[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/two-factor/\?next=/admin/corporates/enterprise/$"))
    page.get_by_label("Six-digit code").fill(code_for(totp_secret))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/admin/corporates/enterprise/")
    for action, done in (
        ("Start review of selected enterprises", "Under review: 1."),
        ("Approve selected enterprises", "Approved: 1."),
    ):
        page.locator(f"input.action-select[value='{enterprise.pk}']").check()
        page.locator("select[name='action']").select_option(label=action)
        page.get_by_role("button", name="Go").click()
        page.get_by_label("Reason").fill("Documents match the company registry; sanctions screening clear.")
        page.get_by_role("button", name="Confirm").click()
        page.get_by_text(done).wait_for()


def test_apply_approve_sign_in_with_totp_and_see_balances(page, mint):
    # 1. The applicant applies through the portal's form.
    apply_through_the_form(page)
    enterprise = Enterprise.objects.get(registration_number="HK-7700123")
    assert enterprise.status == EnterpriseStatus.APPLIED

    # 2. The applicant (the enterprise's first admin) signs in: an admin may
    #    move money, so two-factor set-up comes before any other page.
    sign_in(page, APPLICANT, APPLICANT_PASSWORD)
    page.wait_for_url("**/two-factor/setup/")
    assert page.locator("img.qr").get_attribute("src").startswith("data:image/svg+xml;base64,")
    secret = page.get_by_test_id("totp-secret").inner_text()
    device = TOTPDevice.objects.get(user__username=APPLICANT, confirmed=False)
    assert base64.b32decode(secret.replace(" ", "")) == device.bin_key
    page.get_by_label("Six-digit code").fill(code_for(secret))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    # Not approved yet: the portal's home is the application's status page.
    page.wait_for_url(re.compile(r".*/application/$"))
    assert page.get_by_test_id("kyb-status").inner_text() == "Applied"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")

    # 3. The back office approves in Django admin, which opens the wallets.
    reviewer = get_user_model().objects.create_superuser(BACKOFFICE[0], BACKOFFICE[0], BACKOFFICE[1])
    reviewer_device = TOTPDevice.objects.create(user=reviewer, name="Back-office authenticator", confirmed=True)
    approve_in_admin(page, enterprise, base64.b32encode(reviewer_device.bin_key).decode())
    enterprise.refresh_from_db()
    assert enterprise.status == EnterpriseStatus.APPROVED
    page.context.clear_cookies()

    # Fiat arrives at the custodian: the ledger mints the tokens.
    mint(enterprise, "1250000.00", "HKD")
    mint(enterprise, "0.05", "CNH")

    # 4. The member signs in with password and TOTP and sees the balances.
    sign_in(page, APPLICANT, APPLICANT_PASSWORD)
    page.wait_for_url("**/two-factor/**")
    # The set-up code's time step is spent; the app's next code is accepted (one step of tolerance).
    page.get_by_label("Six-digit code").fill(code_for(secret, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r".*/$"))
    assert page.get_by_test_id("enterprise-status").inner_text() == "Approved"
    assert page.get_by_test_id("balance-HKD").inner_text() == "1,250,000.00"
    assert page.get_by_test_id("balance-USD").inner_text() == "0.00"
    assert page.get_by_test_id("balance-CNH").inner_text() == "0.05"

"""The back office's door: Django admin lets staff in only past TOTP two-factor (corporates/admin_site.py)."""

from __future__ import annotations

import base64
import io
from urllib.parse import quote

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from corporates.admin_site import BackOfficeAdminSite
from settlement.management.commands.seed_demo import BACKOFFICE_LOGIN, DEMO_TOTP_SECRET
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "Back-office-review-77"
ENTERPRISES = reverse("admin:corporates_enterprise_changelist")
ADMIN_LOGIN = reverse("admin:login")


def code_for(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture
def staff(fast_password_hashing):
    return UserFactory(username="reviewer@harbourline.example", password=PASSWORD, is_staff=True, is_superuser=True)


def password_step(client: Client, username: str, password: str = PASSWORD, *, next_url: str = ENTERPRISES):
    return client.post(f"{ADMIN_LOGIN}?next={next_url}", {"username": username, "password": password, "next": next_url})


def registered_changelists() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") for model in admin.site._registry
    ]


def test_the_default_admin_site_is_the_two_factor_one():
    assert isinstance(admin.site, BackOfficeAdminSite)
    assert admin.site.name == "admin"
    assert len(admin.site._registry) > 10  # every app's ModelAdmins are still registered


def test_a_password_alone_opens_no_admin_page(client, staff):
    client.force_login(staff)
    for url in [reverse("admin:index"), *registered_changelists()]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(ADMIN_LOGIN), url


def test_password_then_code_leads_to_the_page_asked_for(client, staff):
    device = TOTPDevice.objects.create(user=staff, name="Authenticator app", confirmed=True)

    response = password_step(client, staff.username)
    # Password accepted, but admin still answers with its door...
    assert response.status_code == 302
    response = client.get(response["Location"])
    assert response["Location"].startswith(ADMIN_LOGIN)
    # ...which sends the staff user to the code prompt, keeping where they were going.
    response = client.get(response["Location"])
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('corporates:two_factor_verify')}?next={ENTERPRISES}"

    passed = client.post(reverse("corporates:two_factor_verify"), {"token": code_for(device), "next": ENTERPRISES})
    assert passed.status_code == 302 and passed["Location"] == ENTERPRISES
    assert client.get(ENTERPRISES).status_code == 200


def test_a_wrong_code_keeps_the_door_shut(client, staff):
    device = TOTPDevice.objects.create(user=staff, name="Authenticator app", confirmed=True)
    password_step(client, staff.username)
    wrong = code_for(device, steps_ahead=5)
    response = client.post(reverse("corporates:two_factor_verify"), {"token": wrong, "next": ENTERPRISES})
    assert response.status_code == 200 and "token" in response.context["form"].errors
    assert client.get(ENTERPRISES).status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # repeated guesses wait longer and longer


def test_staff_without_an_authenticator_are_sent_to_enrol_and_come_back(client, staff):
    password_step(client, staff.username)
    response = client.get(f"{ADMIN_LOGIN}?next={ENTERPRISES}")
    assert response["Location"] == f"{reverse('corporates:two_factor_setup')}?next={ENTERPRISES}"

    setup = client.get(response["Location"])
    assert setup.status_code == 200 and setup.context["optional"] is False
    assert client.get(ENTERPRISES).status_code == 302  # not in yet
    device = TOTPDevice.objects.get(user=staff, confirmed=False)

    done = client.post(response["Location"], {"token": code_for(device), "next": ENTERPRISES})
    assert done.status_code == 302 and done["Location"] == ENTERPRISES
    assert client.get(ENTERPRISES).status_code == 200


def test_the_enrolment_does_not_redirect_off_site(client, staff):
    password_step(client, staff.username)
    url = reverse("corporates:two_factor_setup")
    client.get(url)
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    done = client.post(url, {"token": code_for(device), "next": "https://evil.example/"})
    assert done["Location"] == "/"


def test_a_wrong_password_never_reaches_the_code_prompt(client, staff):
    TOTPDevice.objects.create(user=staff, name="Authenticator app", confirmed=True)
    response = password_step(client, staff.username, "not-the-password")
    assert response.status_code == 200  # the form again, with its error
    assert client.get(f"{ADMIN_LOGIN}?next={ENTERPRISES}").status_code == 200  # no redirect to the prompt


def test_a_verified_member_who_is_not_staff_is_still_refused(client):
    member = MembershipFactory(role="admin")
    device = TOTPDevice.objects.create(user=member.user, name="Authenticator app", confirmed=True)
    client.force_login(member.user, backend="django.contrib.auth.backends.ModelBackend")
    client.post(reverse("corporates:two_factor_verify"), {"token": code_for(device)})
    assert client.get(ENTERPRISES)["Location"].startswith(ADMIN_LOGIN)
    # Admin's own login page (no redirect to a code prompt: staff only).
    assert client.get(f"{ADMIN_LOGIN}?next={ENTERPRISES}").status_code == 200


def test_a_deleted_authenticator_ends_admin_access(client, staff):
    device = TOTPDevice.objects.create(user=staff, name="Authenticator app", confirmed=True)
    password_step(client, staff.username)
    client.post(reverse("corporates:two_factor_verify"), {"token": code_for(device), "next": ENTERPRISES})
    assert client.get(ENTERPRISES).status_code == 200
    device.delete()
    assert client.get(ENTERPRISES).status_code == 302


def test_every_registered_admin_page_works_past_two_factor(admin_client):
    for url in [reverse("admin:index"), *registered_changelists()]:
        assert admin_client.get(url).status_code == 200, url


def test_the_demo_back_office_login_passes_with_the_printed_key(client):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())  # run again: still one authenticator
    username, password = BACKOFFICE_LOGIN
    assert TOTPDevice.objects.filter(user__username=username, confirmed=True).count() == 1

    password_step(client, username, password)
    code = f"{TOTP(base64.b32decode(DEMO_TOTP_SECRET)).token():06d}"
    passed = client.post(reverse("corporates:two_factor_verify"), {"token": code, "next": ENTERPRISES})
    assert passed["Location"] == ENTERPRISES
    assert client.get(ENTERPRISES).status_code == 200


def test_the_next_parameter_is_kept_through_the_door_url_encoded_safely(client, staff):
    TOTPDevice.objects.create(user=staff, name="Authenticator app", confirmed=True)
    client.force_login(staff)
    target = "/admin/corporates/enterprise/?status__exact=applied&q=a b"
    response = client.get(f"{ADMIN_LOGIN}?next={quote(target)}")
    assert response.status_code == 302
    prompt = client.get(response["Location"])
    assert prompt.context["next"] == target


def test_failed_admin_sign_ins_are_throttled_like_the_portals(client, staff, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert password_step(client, staff.username, "not-the-password").status_code == 200
    assert password_step(client, staff.username, "not-the-password").status_code == 429
    # Even the right password is refused during the cool-off.
    assert password_step(client, staff.username).status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_door_never_forwards_off_site(client, staff):
    TOTPDevice.objects.create(user=staff, name="Authenticator app", confirmed=True)
    client.force_login(staff)
    response = client.get(f"{ADMIN_LOGIN}?next=https://evil.example/admin/")
    assert response["Location"] == f"{reverse('corporates:two_factor_verify')}?next={reverse('admin:index')}"

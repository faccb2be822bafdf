"""Sign-in: password, then TOTP for everyone who can move money; throttling; sessions; CSRF."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import UserFactory
from tests.portal.conftest import PASSWORD, totp_now

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("corporates:dashboard")
LOGIN = reverse("corporates:login")
VERIFY = reverse("corporates:two_factor_verify")
SETUP = reverse("corporates:two_factor_setup")


def sign_in(client: Client, username: str, password: str = PASSWORD):
    return client.post(LOGIN, {"username": username, "password": password})


def test_password_then_totp_leads_to_the_dashboard(make_member, device_for):
    member = make_member("maker")
    device = device_for(member)
    client = Client()

    response = sign_in(client, member.user.username)
    assert response.status_code == 302
    # Signed in with the password only: every page sends the member to the code prompt.
    for url in (DASHBOARD, reverse("corporates:members"), reverse("corporates:statement", args=["HKD"])):
        assert client.get(url)["Location"].startswith(VERIFY)

    key_before = client.session.session_key
    response = client.post(VERIFY, {"token": totp_now(device)})
    assert response.status_code == 302
    assert client.get(DASHBOARD).status_code == 200
    # Passing two-factor gives the session a new key.
    assert client.session.session_key != key_before


@pytest.mark.parametrize("role", ["admin", "maker", "checker"])
def test_money_roles_without_an_authenticator_must_set_one_up(make_member, role, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the back-off after a wrong code has its own test
    member = make_member(role)
    client = Client()
    sign_in(client, member.user.username)

    assert client.get(DASHBOARD)["Location"] == SETUP
    page = client.get(SETUP)
    assert page.status_code == 200
    assert b"data:image/svg+xml;base64," in page.content
    assert b"Skip for now" not in page.content
    device = TOTPDevice.objects.get(user=member.user, confirmed=False)

    assert client.post(SETUP, {"token": "000000" if totp_now(device) != "000000" else "111111"}).status_code == 200
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get(DASHBOARD)["Location"] == SETUP

    assert client.post(SETUP, {"token": totp_now(device, steps_ahead=1)})["Location"] == DASHBOARD
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(DASHBOARD).status_code == 200


def test_the_setup_page_shows_the_secret_the_qr_code_carries(make_member):
    import base64

    member = make_member("admin")
    client = Client()
    sign_in(client, member.user.username)
    response = client.get(SETUP)
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    device = TOTPDevice.objects.get(user=member.user)
    secret = base64.b32encode(device.bin_key).decode()
    shown = page.split('data-testid="totp-secret">')[1].split("</span>")[0].replace(" ", "")
    assert shown == secret


def test_a_viewer_may_skip_two_factor(make_member):
    member = make_member("viewer")
    client = Client()
    sign_in(client, member.user.username)
    assert client.get(DASHBOARD).status_code == 200
    assert b"Skip for now" in client.get(SETUP).content


def test_a_viewer_with_an_authenticator_must_use_it(make_member, device_for):
    member = make_member("viewer")
    device_for(member)
    client = Client()
    sign_in(client, member.user.username)
    assert client.get(DASHBOARD)["Location"].startswith(VERIFY)


def test_a_code_is_accepted_once(make_member, device_for):
    member = make_member("checker")
    device = device_for(member)
    code = totp_now(device)
    first, second = Client(), Client()
    sign_in(first, member.user.username)
    sign_in(second, member.user.username)

    assert first.post(VERIFY, {"token": code}).status_code == 302
    replay = second.post(VERIFY, {"token": code})
    assert replay.status_code == 200
    assert b"not valid" in replay.content
    assert second.get(DASHBOARD)["Location"].startswith(VERIFY)


def test_wrong_codes_are_throttled(make_member, device_for):
    member = make_member("maker")
    device = device_for(member)
    client = Client()
    sign_in(client, member.user.username)
    wrong = "123456" if totp_now(device) != "123456" else "654321"

    client.post(VERIFY, {"token": wrong})
    # Straight after a failure even the right code waits out the back-off.
    response = client.post(VERIFY, {"token": totp_now(device)})
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.throttling_failure_count == 1


def test_failed_sign_ins_lock_the_login_for_the_cool_off(make_member):
    member = make_member("maker")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, member.user.username, "wrong-password").status_code == 200
    assert sign_in(client, member.user.username, "wrong-password").status_code == 429

    # Even the right password is refused during the cool-off.
    locked = sign_in(client, member.user.username)
    assert locked.status_code == 429
    assert b"Sign-in paused" in locked.content
    assert "_auth_user_id" not in client.session
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)

    axes_reset(username=member.user.username)
    axes_reset(ip="127.0.0.1")
    assert not AccessAttempt.objects.exists()
    assert sign_in(client, member.user.username).status_code == 302


def test_failed_sign_ins_from_one_address_lock_other_logins_too(make_member):
    members = [make_member("maker") for _ in range(settings.AXES_FAILURE_LIMIT + 1)]
    client = Client()
    for member in members[:-1]:
        sign_in(client, member.user.username, "wrong-password")
    # A different login from the same address is refused: spraying one password over many logins stops.
    assert sign_in(client, members[-1].user.username).status_code == 429


def test_sessions_expire(make_member, portal_client):
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.SESSION_COOKIE_HTTPONLY
    member = make_member("admin")
    client = Client()
    sign_in(client, member.user.username)
    assert client.session.get_expiry_age() <= settings.SESSION_COOKIE_AGE

    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    assert client.get(DASHBOARD)["Location"].startswith(LOGIN)


def test_sign_out_ends_the_session_and_takes_post_only(make_member, portal_client):
    client = portal_client(make_member("admin"))
    assert client.get(DASHBOARD).status_code == 200
    assert client.get(reverse("corporates:logout")).status_code == 405
    assert client.post(reverse("corporates:logout")).status_code == 302
    assert client.get(DASHBOARD)["Location"].startswith(LOGIN)


def test_a_login_without_an_enterprise_is_refused(db):
    staff = UserFactory(is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get(DASHBOARD).status_code == 403


def test_next_is_kept_through_the_code_prompt_but_only_on_this_site(make_member, device_for):
    member = make_member("admin")
    device = device_for(member)
    client = Client()
    sign_in(client, member.user.username)
    response = client.post(f"{VERIFY}?next=https://evil.example/", {"token": totp_now(device)})
    assert response["Location"] == DASHBOARD


@pytest.mark.parametrize(
    ("url_name", "data"),
    [
        ("corporates:login", {"username": "x@example.com", "password": "y"}),
        ("corporates:two_factor_verify", {"token": "123456"}),
        ("corporates:two_factor_setup", {"token": "123456"}),
        ("corporates:member_invite", {"email": "new@example.com", "role": "maker"}),
        ("corporates:logout", {}),
    ],
)
def test_every_form_needs_its_csrf_token(make_member, portal_client, url_name, data):
    client = portal_client(make_member("admin"), enforce_csrf_checks=True)
    response = client.post(reverse(url_name), data)
    assert response.status_code == 403
    assert b"This form has expired" in response.content

"""Fixtures of the portal tests: members with a role, authenticators, signed-in clients."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from corporates.models import Enterprise, Membership
from tests.factories import MembershipFactory

PASSWORD = "correct-horse-battery-staple"


def totp_now(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the member's authenticator app shows now (or ``steps_ahead`` periods later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # Sign-in tests hash many passwords; PBKDF2's cost is production's concern, not these rules'.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def enterprise(make_enterprise) -> Enterprise:
    return make_enterprise(legal_name="Victoria Harbour Trading Ltd")


@pytest.fixture
def make_member(enterprise) -> Callable[..., Membership]:
    """A member of ``enterprise`` (or another) with a role; password ``PASSWORD``."""

    def make(role: str = "admin", *, of: Enterprise | None = None, username: str | None = None) -> Membership:
        kwargs = {"user__username": username} if username else {}
        return MembershipFactory(enterprise=of or enterprise, role=role, **kwargs)

    return make


@pytest.fixture
def device_for() -> Callable[..., TOTPDevice]:
    def make(membership: Membership) -> TOTPDevice:
        return TOTPDevice.objects.create(user=membership.user, name="Authenticator app", confirmed=True)

    return make


@pytest.fixture
def portal_client(device_for) -> Callable[..., Client]:
    """A client signed in as the member, past two-factor (a device is created and used)."""

    def make(membership: Membership, *, verified: bool = True, **client_kwargs) -> Client:
        client = Client(**client_kwargs)
        client.force_login(membership.user, backend="django.contrib.auth.backends.ModelBackend")
        if verified:
            device = device_for(membership)
            session = client.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()
        return client

    return make

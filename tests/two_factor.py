"""Test helper: a client signed in and past TOTP two-factor, for pages that require it.

The portal's money roles and Django admin (corporates/admin_site.py) both
refuse a session that has not passed two-factor. Tests that are not about
signing in use this instead of walking the password and code pages.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice


def force_login_verified(client: Client, user: AbstractBaseUser) -> Client:
    """``client.force_login(user)``, then mark the session verified by a confirmed device (created if none)."""
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    # What django_otp.login() stores after a good code.
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client

"""The demo logins `make run` prints can sign in with the printed two-factor key."""

from __future__ import annotations

import base64
import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP

from settlement.management.commands.seed_demo import DEMO_ENTERPRISES, DEMO_PASSWORD, DEMO_TOTP_SECRET

pytestmark = pytest.mark.django_db


def test_a_demo_login_signs_in_with_the_printed_key():
    call_command("seed_demo", stdout=io.StringIO())
    _, _, _, login, balances = DEMO_ENTERPRISES[0]
    client = Client()

    client.post(reverse("corporates:login"), {"username": login, "password": DEMO_PASSWORD})
    code = f"{TOTP(base64.b32decode(DEMO_TOTP_SECRET)).token():06d}"
    assert client.post(reverse("corporates:two_factor_verify"), {"token": code}).status_code == 302

    page = client.get(reverse("corporates:dashboard")).content.decode()
    assert 'data-testid="balance-HKD">2,500,000.00<' in page
    assert balances["HKD"] == "2500000.00"

"""Fixtures of the corporates tests (KYB: applications, documents, sanctions, bank accounts)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from corporates.lei import lei_check_digits
from corporates.onboarding.applications import Application, OwnerInput, enterprise_apply
from corporates.sanctions import sanctions_list_load
from tests.factories import UserFactory

PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32


def lei_for(seed: int) -> str:
    """A valid LEI (correct ISO 7064 check digits) from a number."""
    prefix = f"5493{seed:014d}"
    return prefix + lei_check_digits(prefix)


@pytest.fixture(autouse=True)
def kyb_media_root(settings, tmp_path) -> Path:
    """Documents go to a per-test directory, never to var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def fast_password_hashing(settings) -> None:
    """PBKDF2's deliberate slowness is not under test here; MD5 keeps these tests fast."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def pdf_upload() -> Callable[..., SimpleUploadedFile]:
    def make(name: str = "certificate.pdf", content: bytes = PDF_BYTES) -> SimpleUploadedFile:
        return SimpleUploadedFile(name, content, content_type="application/pdf")

    return make


@pytest.fixture
def application_for(pdf_upload) -> Callable[..., Application]:
    """A complete, valid application; keyword arguments replace any field."""
    counter = {"n": 0}

    def make(**overrides) -> Application:
        counter["n"] += 1
        n = counter["n"]
        fields = {
            "legal_name": f"Harbour Test Trading {n} Ltd",
            "registration_number": f"CR-{n:07d}",
            "jurisdiction": "HK",
            "registered_address": "1 Harbour Road, Wan Chai, Hong Kong",
            "lei": lei_for(n),
            "contact_name": "Mei Chan",
            "contact_email": f"finance{n}@example.com",
            "contact_phone": "+852 5555 0100",
            "applicant_email": f"applicant{n}@example.com",
            "applicant_password": "a-long-and-unusual-passphrase",
            "expected_volumes": {"HKD": "2500000.00", "USD": "300000.00"},
            "beneficial_owners": [
                OwnerInput(full_name="Mei Chan", nationality="HK", ownership_percent="60"),
                OwnerInput(full_name="Daniel Okafor", nationality="GB", ownership_percent="25.50"),
            ],
            "documents": {
                "certificate_of_incorporation": pdf_upload("certificate.pdf"),
                "proof_of_address": SimpleUploadedFile("bill.png", PNG_BYTES, content_type="image/png"),
            },
        }
        fields.update(overrides)
        return Application(**fields)

    return make


@pytest.fixture
def apply(db, application_for, fast_password_hashing):
    """Submit an application through the service; returns the ApplicationResult."""

    def submit(**overrides):
        return enterprise_apply(application=application_for(**overrides))

    return submit


SANCTIONS_CSV = """# test list
name,aliases,country,list_source
José Ñúñez Villalobos,Jose Nunez;El Contador,VE,TEST-OFAC
Blackwater Maritime Trading Limited,Blackwater Maritime,PA,TEST-UN
Søren Åkerlund,,DK,TEST-EU
"""


@pytest.fixture
def write_sanctions_csv(tmp_path) -> Callable[[str], Path]:
    counter = {"n": 0}

    def write(text: str) -> Path:
        counter["n"] += 1
        path = tmp_path / f"sanctions-{counter['n']}.csv"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def sanctions_list(db, write_sanctions_csv):
    """The small test list above, loaded."""
    return sanctions_list_load(path=write_sanctions_csv(SANCTIONS_CSV))


@pytest.fixture
def back_office(db, fast_password_hashing):
    """A superuser of the back office (Django admin)."""
    return UserFactory(username="reviewer@harbourline.example", is_staff=True, is_superuser=True)


@pytest.fixture
def verified_client():
    """A test client signed in as ``user`` and past two-factor (a confirmed TOTP device is used)."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def make(user) -> Client:
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        return client

    return make

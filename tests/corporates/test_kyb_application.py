"""Applying: one transaction that stores the application, its documents and its first admin."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from corporates.models import (
    BeneficialOwner,
    Enterprise,
    EnterpriseStatus,
    EnterpriseStatusChange,
    KybDocument,
    MemberRole,
)
from corporates.onboarding.applications import (
    ApplicationInvalid,
    BeneficialOwnershipOver100,
    DocumentTooLarge,
    DocumentTypeNotAllowed,
    OwnerInput,
)
from tests.corporates.conftest import JPEG_BYTES, PDF_BYTES, PNG_BYTES, lei_for

pytestmark = pytest.mark.django_db


def test_application_stores_everything_and_makes_the_applicant_admin(apply, kyb_media_root):
    result = apply()
    enterprise = result.enterprise

    assert enterprise.status == EnterpriseStatus.APPLIED
    assert enterprise.kyb_profile.lei.startswith("5493")
    assert {v.monthly_volume.currency.code: v.monthly_volume.amount for v in enterprise.expected_volumes.all()} == {
        "HKD": Decimal("2500000.00"),
        "USD": Decimal("300000.00"),
    }
    assert sorted(o.ownership_percent for o in enterprise.beneficial_owners.all()) == [Decimal("25.50"), Decimal("60")]
    membership = result.applicant.membership
    assert (membership.enterprise, membership.role) == (enterprise, MemberRole.ADMIN)
    assert result.applicant.check_password("a-long-and-unusual-passphrase")
    [change] = EnterpriseStatusChange.objects.filter(enterprise=enterprise)
    assert (change.from_status, change.to_status, change.actor) == ("", "applied", result.applicant)

    documents = {d.kind: d for d in enterprise.kyb_documents.all()}
    assert documents["certificate_of_incorporation"].content_type == "application/pdf"
    assert documents["proof_of_address"].content_type == "image/png"
    stored = Path(kyb_media_root) / documents["certificate_of_incorporation"].file.name
    assert stored.read_bytes() == PDF_BYTES
    # Random stored names under kyb/<enterprise>/, never the uploader's file name.
    assert stored.parent.name == enterprise.public_id and "certificate" not in stored.name


def test_a_document_has_no_public_url(apply):
    document = apply().enterprise.kyb_documents.first()
    with pytest.raises(NotImplementedError):
        document.file.url  # noqa: B018


def test_jpeg_is_accepted(apply):
    jpeg = SimpleUploadedFile("address.JPEG", JPEG_BYTES)
    result = apply(documents={"certificate_of_incorporation": jpeg, "proof_of_address": jpeg})
    assert set(result.enterprise.kyb_documents.values_list("content_type", flat=True)) == {"image/jpeg"}


def test_bad_lei_is_refused(apply):
    with pytest.raises(ApplicationInvalid) as caught:
        apply(lei="5493001KJTIIGC8Y1R13")
    assert caught.value.field == "lei"
    assert not Enterprise.objects.exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("certificate.pdf", b"This is plain text pretending to be a PDF.\n"),  # a .pdf that is really text
        ("certificate.pdf", PNG_BYTES),  # a PNG named .pdf
        ("certificate.txt", PDF_BYTES),  # a PDF with a name we do not accept
        ("certificate.exe", b"MZ\x90\x00"),
        ("certificate.pdf", b""),
    ],
)
def test_wrong_document_type_is_refused(apply, kyb_media_root, name, content):
    documents = {
        "certificate_of_incorporation": SimpleUploadedFile(name, content, content_type="application/pdf"),
        "proof_of_address": SimpleUploadedFile("bill.png", PNG_BYTES),
    }
    with pytest.raises(DocumentTypeNotAllowed) as caught:
        apply(documents=documents)
    assert caught.value.code == "document_type_not_allowed"
    assert caught.value.field == "certificate_of_incorporation"
    assert not Enterprise.objects.exists()
    assert not any(Path(kyb_media_root).rglob("*.*"))


def test_oversized_document_is_refused(apply, settings):
    settings.KYB_DOCUMENT_MAX_BYTES = 1024
    big = SimpleUploadedFile("certificate.pdf", PDF_BYTES + b"0" * 1024)
    with pytest.raises(DocumentTooLarge) as caught:
        apply(
            documents={"certificate_of_incorporation": big, "proof_of_address": SimpleUploadedFile("a.png", PNG_BYTES)}
        )
    assert caught.value.code == "document_too_large"


def test_a_document_exactly_at_the_limit_is_accepted(apply, settings):
    settings.KYB_DOCUMENT_MAX_BYTES = 1024
    exact = SimpleUploadedFile("certificate.pdf", PDF_BYTES + b"0" * (1024 - len(PDF_BYTES)))
    result = apply(documents={"certificate_of_incorporation": exact, "proof_of_address": exact})
    assert result.enterprise.kyb_documents.count() == 2


def test_both_documents_are_required(apply, pdf_upload):
    with pytest.raises(ApplicationInvalid) as caught:
        apply(documents={"certificate_of_incorporation": pdf_upload()})
    assert caught.value.field == "proof_of_address"


def test_beneficial_ownership_over_100_percent_is_refused(apply):
    owners = [
        OwnerInput(full_name="A Owner", nationality="HK", ownership_percent="60"),
        OwnerInput(full_name="B Owner", nationality="SG", ownership_percent="40.01"),
    ]
    with pytest.raises(BeneficialOwnershipOver100):
        apply(beneficial_owners=owners)
    assert not BeneficialOwner.objects.exists()


def test_ownership_of_exactly_100_percent_is_accepted(apply):
    owners = [
        OwnerInput(full_name="A Owner", nationality="HK", ownership_percent="66.67"),
        OwnerInput(full_name="B Owner", nationality="SG", ownership_percent="33.33"),
    ]
    assert apply(beneficial_owners=owners).enterprise.beneficial_owners.count() == 2


@pytest.mark.parametrize("percent", ["0", "-5", "100.01", "12.345", "abc", "NaN"])
def test_bad_ownership_percentages_are_refused(apply, percent):
    with pytest.raises(ApplicationInvalid) as caught:
        apply(beneficial_owners=[OwnerInput(full_name="A Owner", nationality="HK", ownership_percent=percent)])
    assert caught.value.field == "beneficial_owners.0.ownership_percent"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"legal_name": "  "}, "legal_name"),
        ({"jurisdiction": "Hong Kong"}, "jurisdiction"),
        ({"contact_email": "not-an-email"}, "contact_email"),
        ({"applicant_password": "short"}, "applicant_password"),
        ({"expected_volumes": {}}, "expected_volumes"),
        ({"expected_volumes": {"EUR": "100.00"}}, "expected_volumes"),
        ({"expected_volumes": {"HKD": "1.005"}}, "expected_volumes.HKD"),
        ({"expected_volumes": {"HKD": "-10"}}, "expected_volumes.HKD"),
        ({"beneficial_owners": [OwnerInput(full_name="X", nationality="Hongkong", ownership_percent="5")]},
         "beneficial_owners.0.nationality"),
    ],
)  # fmt: skip
def test_invalid_fields_are_named(apply, override, field):
    with pytest.raises(ApplicationInvalid) as caught:
        apply(**override)
    assert caught.value.field == field


def test_the_same_company_cannot_apply_twice(apply):
    first = apply()
    with pytest.raises(ApplicationInvalid) as caught:
        apply(registration_number=first.enterprise.registration_number.lower())
    assert caught.value.code == "enterprise_already_registered"
    with pytest.raises(ApplicationInvalid) as caught:
        apply(lei=first.enterprise.kyb_profile.lei)
    assert caught.value.code == "enterprise_already_registered"


def test_an_existing_users_email_cannot_apply(apply, kyb_media_root):
    apply(applicant_email="taken@example.com")
    with pytest.raises(ApplicationInvalid) as caught:
        apply(applicant_email="TAKEN@example.com")
    assert caught.value.code == "applicant_email_taken"
    # The refused application left neither rows nor files behind.
    assert Enterprise.objects.count() == 1
    assert KybDocument.objects.count() == 2
    assert len([p for p in Path(kyb_media_root).rglob("*") if p.is_file()]) == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_applications_for_one_company_store_one(application_for, fast_password_hashing, kyb_media_root):
    import threading

    from django.db import connection

    from corporates.onboarding.applications import enterprise_apply

    applications = [
        application_for(registration_number="CR-RACE-1", lei=lei_for(777 + n), applicant_email=f"race{n}@example.com")
        for n in range(3)
    ]
    barrier = threading.Barrier(len(applications))
    outcomes: list[str] = []

    def submit(application) -> None:
        try:
            barrier.wait()
            enterprise_apply(application=application)
            outcomes.append("ok")
        except ApplicationInvalid as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(a,)) for a in applications]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["enterprise_already_registered", "enterprise_already_registered", "ok"]
    assert Enterprise.objects.filter(registration_number="CR-RACE-1").count() == 1
    assert KybDocument.objects.count() == 2
    assert len([p for p in Path(kyb_media_root).rglob("*") if p.is_file()]) == 2  # the losers' files are gone

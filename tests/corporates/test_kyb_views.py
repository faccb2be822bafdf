"""The portal's application form, status page and authorising document view."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from corporates.models import Enterprise, MemberRole
from corporates.onboarding.status import enterprise_review_start
from tests.corporates.conftest import PDF_BYTES, PNG_BYTES, lei_for
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
APPLY = reverse("corporates:apply")


def form_data(**overrides):
    data = {
        "legal_name": "Kowloon Components Ltd",
        "registration_number": "CR-7654321",
        "jurisdiction": "hk",
        "registered_address": "8 Nathan Road\nKowloon",
        "lei": lei_for(900),
        "contact_name": "Ada Wong",
        "contact_email": "ada@kowloon.example",
        "contact_phone": "+852 5555 0199",
        "volume_hkd": "1000000.00",
        "volume_usd": "",
        "volume_cnh": "",
        "owners-TOTAL_FORMS": "4",
        "owners-INITIAL_FORMS": "0",
        "owners-MIN_NUM_FORMS": "0",
        "owners-MAX_NUM_FORMS": "10",
        "owners-0-full_name": "Ada Wong",
        "owners-0-nationality": "HK",
        "owners-0-ownership_percent": "75",
        "applicant_email": "ada@kowloon.example",
        "applicant_password": "a-long-and-unusual-passphrase",
        "applicant_password_confirm": "a-long-and-unusual-passphrase",
        "certificate_of_incorporation": SimpleUploadedFile("ci.pdf", PDF_BYTES),
        "proof_of_address": SimpleUploadedFile("poa.png", PNG_BYTES),
    }
    data.update(overrides)
    return data


def test_anyone_can_open_the_form(client):
    response = client.get(APPLY)
    assert response.status_code == 200
    assert b'enctype="multipart/form-data"' in response.content


def test_applying_through_the_portal(client, fast_password_hashing):
    response = client.post(APPLY, form_data())
    assert response.status_code == 302
    assert response["Location"] == reverse("corporates:login")
    enterprise = Enterprise.objects.get()
    assert (enterprise.legal_name, enterprise.jurisdiction) == ("Kowloon Components Ltd", "HK")
    assert enterprise.beneficial_owners.get().ownership_percent == 75
    assert enterprise.memberships.get().user.username == "ada@kowloon.example"
    assert "_auth_user_id" not in client.session  # the applicant signs in through the normal sign-in


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"lei": "5493001KJTIIGC8Y1R13"}, "lei", "check digits"),
        (
            {"certificate_of_incorporation": SimpleUploadedFile("ci.pdf", b"just text, not a PDF")},
            "certificate_of_incorporation",
            "not a PDF, PNG or JPEG",
        ),
        ({"owners-1-full_name": "Bo", "owners-1-nationality": "GB", "owners-1-ownership_percent": "30"},
         None, "more than 100%"),
        ({"owners-0-ownership_percent": "abc"}, None, "percentage"),
        ({"volume_hkd": "1e6"}, "volume_hkd", ""),
        ({"applicant_password_confirm": "something-else-entirely"}, "applicant_password_confirm", "differ"),
    ],
)  # fmt: skip
def test_refusals_show_on_the_form(client, fast_password_hashing, overrides, field, message):
    response = client.post(APPLY, form_data(**overrides))
    assert response.status_code == 200
    assert not Enterprise.objects.exists()
    form = response.context["form"]
    if field:
        assert form.errors[field]
        assert message in " ".join(form.errors[field])
    else:
        errors = str(form.non_field_errors()) + str([f.errors for f in response.context["owners"].forms])
        assert message in errors


def test_oversized_document_shows_on_the_form(client, settings, fast_password_hashing):
    settings.KYB_DOCUMENT_MAX_BYTES = 100
    response = client.post(APPLY, form_data(proof_of_address=SimpleUploadedFile("poa.png", PNG_BYTES + b"0" * 100)))
    assert response.status_code == 200
    assert "larger than" in " ".join(response.context["form"].errors["proof_of_address"])


@pytest.fixture
def applied(apply):
    return apply()


@pytest.fixture
def member_client(client):
    """Sign a member in; viewers need no two-factor, so the pages open directly."""

    def sign_in(enterprise, role=MemberRole.VIEWER):
        membership = MembershipFactory(enterprise=enterprise, role=role)
        client.force_login(membership.user)
        return client

    return sign_in


def test_status_page_shows_status_and_audit_trail(applied, member_client, back_office):
    enterprise = applied.enterprise
    enterprise_review_start(enterprise=enterprise, reason="Checking the registry extract", actor=back_office)
    response = member_client(enterprise).get(reverse("corporates:application_status"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Under review" in body and "Checking the registry extract" in body and "Application submitted" in body
    assert "Harbourline back office" in body and back_office.username not in body
    for document in enterprise.kyb_documents.all():
        assert reverse("corporates:kyb_document", args=[document.public_id]) in body


def test_status_page_needs_sign_in(client):
    response = client.get(reverse("corporates:application_status"))
    assert response.status_code == 302 and "login" in response["Location"]


def document_url(result):
    document = result.enterprise.kyb_documents.get(kind="certificate_of_incorporation")
    return reverse("corporates:kyb_document", args=[document.public_id])


def test_a_member_of_the_enterprise_gets_its_document(applied, member_client):
    response = member_client(applied.enterprise).get(document_url(applied))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == PDF_BYTES
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "private, no-store"


def test_back_office_gets_any_document(applied, verified_client, back_office):
    assert verified_client(back_office).get(document_url(applied)).status_code == 200


def test_back_office_on_a_password_alone_gets_404(applied, client, back_office):
    # As in admin: staff read documents only past two-factor.
    client.force_login(back_office)
    assert client.get(document_url(applied)).status_code == 404


def test_another_enterprises_member_gets_404(apply, applied, member_client):
    other = apply().enterprise
    assert member_client(other, role=MemberRole.ADMIN).get(document_url(applied)).status_code == 404
    assert member_client(other).get(document_url(applied)).status_code == 404


def test_anonymous_is_sent_to_sign_in(applied, client):
    response = client.get(document_url(applied))
    assert response.status_code == 302 and "login" in response["Location"]


def test_staff_without_the_document_permission_gets_404(applied, client, fast_password_hashing):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(document_url(applied)).status_code == 404


def test_a_member_who_has_not_passed_two_factor_gets_404(applied, client):
    # The applicant is the enterprise's admin: without a verified TOTP device no document.
    client.force_login(applied.applicant)
    assert client.get(document_url(applied)).status_code == 404


def test_unknown_document_is_404(verified_client, back_office):
    assert verified_client(back_office).get(reverse("corporates:kyb_document", args=["doc_nope"])).status_code == 404


def test_documents_are_not_under_a_public_url(applied, client, settings):
    document = applied.enterprise.kyb_documents.first()
    assert client.get("/media/" + document.file.name).status_code == 404
    assert client.get("/" + document.file.name).status_code in (302, 404)


def test_a_document_missing_from_storage_is_404_not_500(applied, verified_client, back_office, kyb_media_root):
    document = applied.enterprise.kyb_documents.first()
    (kyb_media_root / document.file.name).unlink()
    client = verified_client(back_office)
    assert client.get(reverse("corporates:kyb_document", args=[document.public_id])).status_code == 404


STATUS = reverse("corporates:application_status")


def test_an_admin_adds_a_document_while_the_application_is_open(applied, verified_client, back_office):
    client = verified_client(applied.applicant)
    page = client.get(STATUS)
    assert page.context["upload_form"] is not None

    response = client.post(
        STATUS, {"kind": "proof_of_address", "file": SimpleUploadedFile("newer-bill.pdf", PDF_BYTES)}
    )

    assert response.status_code == 302
    documents = applied.enterprise.kyb_documents.filter(kind="proof_of_address").order_by("uploaded_at")
    assert [d.original_name for d in documents] == ["bill.png", "newer-bill.pdf"]  # both versions kept
    assert documents.last().uploaded_by == applied.applicant


def test_a_fake_pdf_added_later_is_refused(applied, verified_client):
    client = verified_client(applied.applicant)
    response = client.post(STATUS, {"kind": "proof_of_address", "file": SimpleUploadedFile("x.pdf", b"plain text")})
    assert response.status_code == 200
    assert "not a PDF, PNG or JPEG" in str(response.context["upload_form"].errors)
    assert applied.enterprise.kyb_documents.count() == 2


def test_no_documents_are_added_once_decided(apply, verified_client, back_office, platform):
    from corporates.onboarding.applications import KybDocumentsClosed, kyb_document_add
    from corporates.services import enterprise_approve

    result = apply()
    enterprise_approve(enterprise=result.enterprise, reason="ok", actor=back_office)
    client = verified_client(result.applicant)
    assert client.get(STATUS).context["upload_form"] is None
    response = client.post(STATUS, {"kind": "proof_of_address", "file": SimpleUploadedFile("a.pdf", PDF_BYTES)})
    assert "only while the application is open" in str(response.context["upload_form"].errors)
    with pytest.raises(KybDocumentsClosed):
        kyb_document_add(
            enterprise=result.enterprise, kind="proof_of_address", upload=SimpleUploadedFile("a.pdf", PDF_BYTES)
        )
    assert result.enterprise.kyb_documents.count() == 2


def test_only_an_admin_adds_documents(applied, member_client):
    client = member_client(applied.enterprise, role=MemberRole.VIEWER)
    response = client.post(STATUS, {"kind": "proof_of_address", "file": SimpleUploadedFile("a.pdf", PDF_BYTES)})
    assert response.status_code == 403
    assert applied.enterprise.kyb_documents.count() == 2

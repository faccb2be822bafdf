"""Portal pages of netting: CSV upload (all or nothing, per-line errors), preview, cancel, a batch and its CSV."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from settlement.netting.services import batch_open, batch_run
from settlement.obligations.models import Obligation, ObligationStatus
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    """Signed in and past two-factor, as a member who can move money must be."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def csv_file(lines: list[str]) -> SimpleUploadedFile:
    return SimpleUploadedFile("obligations.csv", ("\n".join(lines) + "\n").encode(), content_type="text/csv")


def test_upload_is_all_or_nothing_with_errors_by_line(make_enterprise, mint):
    a, b, c = make_enterprise(), make_enterprise(), make_enterprise()
    mint(a, "100.00")
    maker = signed_in(MembershipFactory(enterprise=a, role="maker").user)
    today = timezone.localdate().isoformat()
    header = "payee,amount,currency,value_date,external_reference,memo"

    refused = maker.post(
        "/settlement/netting/",
        {"file": csv_file([header, f"{b.public_id},10.00,HKD,{today},U-1,", f"{c.public_id},1.005,HKD,{today},U-2,"])},
    )
    assert refused.status_code == 200
    assert "amount_too_precise" in refused.content.decode() and Obligation.objects.count() == 0
    assert refused.context["row_errors"][0]["line"] == 3

    accepted = maker.post(
        "/settlement/netting/",
        {"file": csv_file([header, f"{b.public_id},10.00,HKD,{today},U-1,", f"{c.public_id},2.50,HKD,{today},U-2,x"])},
    )
    assert accepted.status_code == 302 and Obligation.objects.count() == 2

    page = maker.get("/settlement/netting/").content.decode()
    assert f"preview-{b.public_id}-HKD" in page and "10.00" in page


def test_a_viewer_sees_but_cannot_upload(make_enterprise):
    a = make_enterprise()
    viewer = signed_in(MembershipFactory(enterprise=a, role="viewer").user)
    assert viewer.get("/settlement/netting/").status_code == 200
    assert viewer.post("/settlement/netting/", {"file": csv_file(["payee"])}).status_code == 403
    template = viewer.get("/settlement/netting/obligations-template.csv")
    assert template.content.decode().splitlines()[0] == "payee,amount,currency,value_date,external_reference,memo"


def test_cancel_and_the_batch_page_with_its_csv(make_enterprise, mint):
    a, b, outsider = make_enterprise(), make_enterprise(), make_enterprise()
    mint(a, "100.00")
    maker = signed_in(MembershipFactory(enterprise=a, role="maker").user)
    today = timezone.localdate().isoformat()
    header = "payee,amount,currency,value_date,external_reference,memo"
    maker.post(
        "/settlement/netting/",
        {"file": csv_file([header, f"{b.public_id},10.00,HKD,{today},K-1,", f"{b.public_id},5.00,HKD,{today},K-2,"])},
    )
    dropped = Obligation.objects.get(external_reference="K-2")
    assert maker.post(f"/settlement/netting/obligations/{dropped.public_id}/cancel/").status_code == 302
    dropped.refresh_from_db()
    assert dropped.status == ObligationStatus.CANCELLED

    batch = batch_run(batch_id=batch_open().pk)
    page = maker.get(f"/settlement/netting/batches/{batch.public_id}/")
    assert page.status_code == 200 and "position-HKD" in page.content.decode()
    lines = b"".join(maker.get(f"/settlement/netting/batches/{batch.public_id}/csv").streaming_content).decode()
    assert "K-1" in lines and "K-2" not in lines
    stranger = signed_in(MembershipFactory(enterprise=outsider, role="viewer").user)
    assert stranger.get(f"/settlement/netting/batches/{batch.public_id}/").status_code == 404


def test_a_checker_approves_what_a_maker_made_above_the_threshold(make_enterprise):
    from corporates.onboarding.limits import enterprise_limits_set

    a, b = make_enterprise(), make_enterprise()
    enterprise_limits_set(
        enterprise=a, currency="HKD", single_payment=None, daily_redemption=None, approval_threshold="100"
    )
    maker_user = MembershipFactory(enterprise=a, role="maker").user
    maker, checker = signed_in(maker_user), signed_in(MembershipFactory(enterprise=a, role="checker").user)
    today = timezone.localdate().isoformat()
    maker.post(
        "/settlement/netting/",
        {
            "file": csv_file(
                ["payee,amount,currency,value_date,external_reference,memo", f"{b.public_id},500.00,HKD,{today},BIG,"]
            )
        },
    )
    big = Obligation.objects.get(external_reference="BIG")
    assert big.needs_approval and big.created_by == maker_user

    assert maker.post(f"/settlement/netting/obligations/{big.public_id}/approve/").status_code == 403
    assert checker.post(f"/settlement/netting/obligations/{big.public_id}/approve/").status_code == 302
    big.refresh_from_db()
    assert not big.needs_approval and big.approved_at is not None

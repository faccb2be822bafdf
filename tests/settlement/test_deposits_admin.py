"""The back office's suspense queue and deadlines in Django admin (no bank needed: wires come as events)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from settlement.deposits.models import InboundWireStatus, ReserveAlert, ReserveAlertKind, SuspenseItem, SuspenseStatus
from settlement.deposits.services import inbound_wire_receive
from settlement.ledger.selectors import wallet_for
from settlement.redemptions.models import Redemption, RedemptionState
from settlement.redemptions.selectors import deadline_status, redemptions_at_risk, redemptions_late
from settlement.redemptions.services import Actor, redemption_request
from settlement.webhooks_in import BankEvent
from tests.settlement.mintredeem import Redeemer

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    """A back-office superuser signed in past two-factor (admin requires it)."""
    user = get_user_model().objects.create_superuser(username="ops@harbourline.example", password="x" * 16)
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def held_wire(amount: int = 4200, reference: str = "HLNOBODY0000") -> SuspenseItem:
    event = BankEvent.from_stripe(
        {
            "id": f"evt_{reference}_{amount}",
            "type": "inbound_wire.received",
            "created": 1,
            "data": {
                "object": {
                    "id": f"iw_{reference}_{amount}",
                    "amount": amount,
                    "currency": "hkd",
                    "reference": reference,
                }
            },
        }
    )
    inbound_wire_receive(event=event)
    return SuspenseItem.objects.get(wire__bank_event_id=event.id)


def test_the_back_office_assigns_a_held_wire_and_it_is_minted(staff, make_enterprise):
    enterprise = make_enterprise()
    item = held_wire()
    url = "/admin/settlement/suspenseitem/"

    form_page = staff.post(url, {"action": "assign_and_mint", "_selected_action": [item.pk]})
    assert form_page.status_code == 200 and b"Assign a held wire" in form_page.content
    done = staff.post(
        url,
        {
            "action": "assign_and_mint",
            "_selected_action": [item.pk],
            "confirm": "1",
            "enterprise": enterprise.pk,
            "note": "Sender confirmed by phone",
        },
    )

    assert done.status_code == 302
    item.refresh_from_db()
    assert item.status == SuspenseStatus.MINTED and item.wire.status == InboundWireStatus.MINTED
    assert wallet_for(enterprise=enterprise, currency="HKD").balance == 4200


def test_the_back_office_records_a_return(staff):
    item = held_wire(100, "HLSTRAY00000")

    staff.post(
        "/admin/settlement/suspenseitem/",
        {"action": "mark_returned", "_selected_action": [item.pk], "confirm": "1", "note": "Returned, RT-77"},
    )

    item.refresh_from_db()
    assert item.status == SuspenseStatus.RETURNED and item.resolution_note == "Returned, RT-77"


def test_redemptions_at_risk_and_late_are_listed(staff, make_enterprise, mint):
    party = Redeemer(make_enterprise())
    mint(party.enterprise, "100.00")
    redemption = redemption_request(
        enterprise=party.enterprise,
        amount="10.00",
        currency="HKD",
        bank_account=party.account(),
        actor=Actor(user=party.maker),
    )
    assert redemption.state == RedemptionState.PROCESSING
    now = timezone.now()
    Redemption.objects.filter(pk=redemption.pk).update(deadline_at=now + timedelta(hours=1))
    redemption.refresh_from_db()

    assert list(redemptions_at_risk(now=now)) == [redemption] and deadline_status(redemption, now=now) == "at risk"
    assert list(redemptions_late(now=now + timedelta(hours=2))) == [redemption]
    page = staff.get("/admin/settlement/redemption/?deadline=at_risk")
    assert page.status_code == 200 and redemption.public_id.encode() in page.content
    assert redemption.public_id.encode() not in staff.get("/admin/settlement/redemption/?deadline=late").content


def test_reserve_alerts_are_resolved_from_admin(staff):
    alert = ReserveAlert.objects.create(kind=ReserveAlertKind.RECONCILIATION, currency="HKD", difference=5, message="x")

    staff.post("/admin/settlement/reservealert/", {"action": "resolve", "_selected_action": [alert.pk]})

    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_at

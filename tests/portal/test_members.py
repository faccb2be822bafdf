"""Members: invitations, roles and removal, managed by an enterprise admin only."""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from corporates import members as services
from corporates.models import Invitation, MemberRole, Membership
from corporates.permissions import RoleNotPermitted
from tests.concurrency import run_in_threads
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SITE = "https://portal.example/"
NEW_PASSWORD = "tidal-basin-ledger-7"
User = get_user_model()


def token_of(issued: services.IssuedInvitation) -> str:
    return issued.accept_url.rstrip("/").split("/")[-2]


def test_an_admin_invites_and_the_link_is_mailed_and_logged(
    make_member, django_capture_on_commit_callbacks, caplog, settings
):
    settings.INVITATION_LOG_LINKS = True
    admin = make_member("admin")
    caplog.set_level(logging.INFO, logger="corporates.members")

    with django_capture_on_commit_callbacks(execute=True):
        issued = services.member_invite(actor=admin.user, email="New.Member@Example.com", role="checker", site_url=SITE)

    invitation = issued.invitation
    assert (invitation.email, invitation.role, invitation.enterprise) == (
        "new.member@example.com",
        "checker",
        admin.enterprise,
    )
    token = token_of(issued)
    assert issued.accept_url == f"https://portal.example/invitations/{token}/accept/"
    # Only the hash is stored.
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Invitation.objects.filter(pk=invitation.pk).values().get())
    assert abs(invitation.expires_at - (timezone.now() + timedelta(hours=72))) < timedelta(minutes=1)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.member@example.com"]
    assert issued.accept_url in mail.outbox[0].body
    assert issued.accept_url in caplog.text


def test_links_stay_out_of_the_log_outside_development(make_member, django_capture_on_commit_callbacks, caplog):
    caplog.set_level(logging.INFO, logger="corporates.members")
    with django_capture_on_commit_callbacks(execute=True):
        issued = services.member_invite(
            actor=make_member("admin").user, email="a@example.com", role="viewer", site_url=SITE
        )
    assert token_of(issued) not in caplog.text
    assert issued.accept_url in mail.outbox[0].body


def test_no_mail_leaves_before_the_invitation_is_committed(make_member, django_capture_on_commit_callbacks):
    admin = make_member("admin")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.member_invite(actor=admin.user, email="a@example.com", role="viewer", site_url=SITE)
    assert len(callbacks) == 1
    assert mail.outbox == []


def test_an_unknown_role_is_refused(make_member):
    admin = make_member("admin")
    with pytest.raises(services.UnknownRole) as refused:
        services.member_invite(actor=admin.user, email="a@example.com", role="owner", site_url=SITE)
    assert refused.value.code == "unknown_role"
    with pytest.raises(services.UnknownRole):
        services.member_change_role(actor=admin.user, membership=make_member("maker"), role="superuser")
    assert not Invitation.objects.exists()


def test_an_unknown_role_is_a_form_error_in_the_portal(make_member, portal_client):
    client = portal_client(make_member("admin"))
    response = client.post(reverse("corporates:member_invite"), {"email": "a@example.com", "role": "owner"})
    assert response.status_code == 400
    assert "role" in response.context["invite_form"].errors
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("role", ["maker", "checker", "viewer"])
def test_only_an_admin_manages_members(make_member, role):
    actor, other = make_member(role), make_member("viewer")
    with pytest.raises(RoleNotPermitted):
        services.member_invite(actor=actor.user, email="a@example.com", role="viewer", site_url=SITE)
    with pytest.raises(RoleNotPermitted):
        services.member_change_role(actor=actor.user, membership=other, role="admin")
    with pytest.raises(RoleNotPermitted):
        services.member_remove(actor=actor.user, membership=other)
    other.refresh_from_db()
    assert other.role == "viewer"


@pytest.mark.parametrize("role", ["maker", "checker", "viewer"])
def test_only_an_admin_manages_members_in_the_portal(make_member, portal_client, role):
    other = make_member("viewer")
    client = portal_client(make_member(role))
    assert client.get(reverse("corporates:members")).status_code == 200
    assert (
        client.post(reverse("corporates:member_invite"), {"email": "a@example.com", "role": "admin"}).status_code == 403
    )
    assert client.post(reverse("corporates:member_change_role", args=[other.pk]), {"role": "admin"}).status_code == 403
    assert client.post(reverse("corporates:member_remove", args=[other.pk])).status_code == 403
    assert not Invitation.objects.exists()
    other.refresh_from_db()
    assert other.role == "viewer"


def test_the_portal_shows_the_link_once(make_member, portal_client):
    client = portal_client(make_member("admin"))
    response = client.post(
        reverse("corporates:member_invite"), {"email": "a@example.com", "role": "maker"}, follow=True
    )
    assert b'data-testid="invitation-link"' in response.content
    assert b'data-testid="invitation-link"' not in client.get(reverse("corporates:members")).content


def test_another_enterprises_member_is_not_found(make_member, make_enterprise, portal_client):
    stranger = make_member("viewer", of=make_enterprise())
    client = portal_client(make_member("admin"))
    assert (
        client.post(reverse("corporates:member_change_role", args=[stranger.pk]), {"role": "admin"}).status_code == 404
    )
    assert client.post(reverse("corporates:member_remove", args=[stranger.pk])).status_code == 404
    with pytest.raises(Membership.DoesNotExist):
        services.member_change_role(actor=make_member("admin").user, membership=stranger, role="admin")


def test_accepting_creates_the_member_and_leads_to_two_factor_setup(make_member):
    admin = make_member("admin")
    issued = services.member_invite(actor=admin.user, email="new@example.com", role="maker", site_url=SITE)
    client = Client()
    url = reverse("corporates:invitation_accept", args=[token_of(issued)])

    assert client.get(url).status_code == 200
    response = client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response["Location"] == reverse("corporates:two_factor_setup")
    user = User.objects.get(username="new@example.com")
    assert user.check_password(NEW_PASSWORD)
    assert (user.membership.enterprise, user.membership.role) == (admin.enterprise, MemberRole.MAKER)
    issued.invitation.refresh_from_db()
    assert issued.invitation.accepted_at is not None
    # A maker must set up TOTP before anything else.
    assert client.get(reverse("corporates:dashboard"))["Location"] == reverse("corporates:two_factor_setup")


def test_an_invitation_is_used_once(make_member):
    issued = services.member_invite(
        actor=make_member("admin").user, email="n@example.com", role="viewer", site_url=SITE
    )
    services.invitation_accept(token=token_of(issued), password=NEW_PASSWORD)
    with pytest.raises(services.InvitationUsed):
        services.invitation_accept(token=token_of(issued), password=NEW_PASSWORD)
    response = Client().get(reverse("corporates:invitation_accept", args=[token_of(issued)]))
    assert response.status_code == 410
    assert b"invitation_used" in response.content


def test_an_expired_invitation_is_refused(make_member):
    issued = services.member_invite(
        actor=make_member("admin").user, email="n@example.com", role="viewer", site_url=SITE
    )
    Invitation.objects.filter(pk=issued.invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.InvitationExpired) as refused:
        services.invitation_accept(token=token_of(issued), password=NEW_PASSWORD)
    assert refused.value.code == "invitation_expired"
    assert not User.objects.filter(username="n@example.com").exists()


def test_an_unknown_token_is_not_found(db):
    with pytest.raises(services.InvitationInvalid):
        services.invitation_accept(token="not-a-token", password=NEW_PASSWORD)
    assert Client().get(reverse("corporates:invitation_accept", args=["not-a-token"])).status_code == 404


def test_inviting_again_withdraws_the_earlier_link(make_member):
    admin = make_member("admin")
    first = services.member_invite(actor=admin.user, email="n@example.com", role="viewer", site_url=SITE)
    second = services.member_invite(actor=admin.user, email="n@example.com", role="maker", site_url=SITE)
    with pytest.raises(services.InvitationUsed):
        services.invitation_accept(token=token_of(first), password=NEW_PASSWORD)
    assert services.invitation_accept(token=token_of(second), password=NEW_PASSWORD).membership.role == "maker"


def test_a_revoked_invitation_is_refused(make_member):
    admin = make_member("admin")
    issued = services.member_invite(actor=admin.user, email="n@example.com", role="viewer", site_url=SITE)
    services.invitation_revoke(actor=admin.user, invitation=issued.invitation)
    with pytest.raises(services.InvitationUsed):
        services.invitation_accept(token=token_of(issued), password=NEW_PASSWORD)


def test_a_weak_password_leaves_the_invitation_usable(make_member):
    issued = services.member_invite(
        actor=make_member("admin").user, email="n@example.com", role="viewer", site_url=SITE
    )
    with pytest.raises(ValidationError):
        services.invitation_accept(token=token_of(issued), password="short")
    assert not User.objects.filter(username="n@example.com").exists()
    response = Client().post(
        reverse("corporates:invitation_accept", args=[token_of(issued)]),
        {"password1": "password", "password2": "password"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["password1"]


def test_an_existing_login_cannot_be_invited(make_member):
    admin, member = make_member("admin"), make_member("viewer")
    with pytest.raises(services.MemberAlreadyExists):
        services.member_invite(actor=admin.user, email=member.user.username.upper(), role="viewer", site_url=SITE)


def test_the_last_admin_stays(make_member):
    admin = make_member("admin")
    with pytest.raises(services.LastAdmin):
        services.member_change_role(actor=admin.user, membership=admin, role="viewer")
    with pytest.raises(services.LastAdmin):
        services.member_remove(actor=admin.user, membership=admin)
    second = make_member("admin")
    services.member_change_role(actor=second.user, membership=admin, role="viewer")
    admin.refresh_from_db()
    assert admin.role == "viewer"


def test_a_removed_member_loses_access(make_member, portal_client):
    admin, maker = make_member("admin"), make_member("maker")
    maker_client = portal_client(maker)
    assert maker_client.get(reverse("corporates:dashboard")).status_code == 200

    services.member_remove(actor=admin.user, membership=maker)

    assert not Membership.objects.filter(pk=maker.pk).exists()
    maker.user.refresh_from_db()
    assert not maker.user.is_active
    assert maker_client.get(reverse("corporates:dashboard"))["Location"].startswith(reverse("corporates:login"))


@pytest.mark.django_db(transaction=True)
def test_one_link_clicked_twice_at_once_creates_one_login(make_member):
    issued = services.member_invite(
        actor=make_member("admin").user, email="race@example.com", role="viewer", site_url=SITE
    )
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def accept() -> None:
        try:
            barrier.wait()
            services.invitation_accept(token=token_of(issued), password=NEW_PASSWORD)
            outcomes.append("accepted")
        except services.InvitationUsed:
            outcomes.append("used")
        finally:
            connection.close()

    run_in_threads(accept, 2)

    assert sorted(outcomes) == ["accepted", "used"]
    assert User.objects.filter(username="race@example.com").count() == 1


def test_the_members_page_shows_who_has_two_factor(make_member, portal_client):
    admin, viewer = make_member("admin", username="admin@example.com"), make_member("viewer", username="v@example.com")
    members = {
        m.user.username: m.two_factor
        for m in portal_client(admin).get(reverse("corporates:members")).context["members"]
    }
    assert members == {"admin@example.com": True, "v@example.com": False}
    assert viewer.role == "viewer"


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin(make_member):
    first, second = make_member("admin"), make_member("admin")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(actor, target) -> None:
        try:
            barrier.wait()
            services.member_change_role(actor=actor.user, membership=target, role="viewer")
            outcomes.append("demoted")
        except (services.LastAdmin, RoleNotPermitted) as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=pair) for pair in ((first, second), (second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Whoever locked second finds they are no longer an admin.
    assert sorted(outcomes) == ["demoted", "role_not_permitted"]
    assert Membership.objects.filter(enterprise=first.enterprise, role="admin").count() == 1


def test_a_demoted_admin_cannot_act_on_a_role_they_lost(make_member):
    first, second, maker = make_member("admin"), make_member("admin"), make_member("maker")
    services.member_change_role(actor=first.user, membership=second, role="viewer")
    with pytest.raises(RoleNotPermitted):
        services.member_change_role(actor=second.user, membership=maker, role="admin")
    with pytest.raises(RoleNotPermitted):
        services.member_invite(actor=second.user, email="x@example.com", role="admin", site_url=SITE)


def test_a_removed_member_can_be_invited_back_and_enrols_afresh(make_member, device_for):
    admin, maker = make_member("admin"), make_member("maker")
    device_for(maker)
    services.member_remove(actor=admin.user, membership=maker)

    issued = services.member_invite(actor=admin.user, email=maker.user.username, role="viewer", site_url=SITE)
    user = services.invitation_accept(token=token_of(issued), password=NEW_PASSWORD)

    assert user.pk == maker.user.pk
    assert user.is_active
    assert user.check_password(NEW_PASSWORD)
    assert user.membership.role == "viewer"
    assert not user.totpdevice_set.exists()


def test_a_back_office_login_cannot_be_invited(make_member):
    staff = UserFactory(is_staff=True, is_active=False)
    with pytest.raises(services.MemberAlreadyExists):
        services.member_invite(actor=make_member("admin").user, email=staff.username, role="viewer", site_url=SITE)

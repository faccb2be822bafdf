"""Members of an enterprise: invitations, roles, removal. An enterprise admin manages them.

Every function takes the acting user and checks the actor's role itself, so
the portal, a future API endpoint and a shell all get the same rules. The last
admin of an enterprise can neither be demoted nor removed: nobody could manage
the members afterwards.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.errors import DomainError
from corporates.models import Invitation, MemberRole, Membership
from corporates.permissions import MANAGE_ROLES, RoleNotPermitted, membership_of, role_require

logger = logging.getLogger(__name__)


class UnknownRole(DomainError):
    code = "unknown_role"
    title = "The role is not one of admin, maker, checker or viewer."
    http_status = 400


class MemberAlreadyExists(DomainError):
    code = "member_already_exists"
    title = "Someone with that email address already has a Harbourline login."


class InvitationInvalid(DomainError):
    code = "invitation_invalid"
    title = "The invitation link is not valid."
    http_status = 404


class InvitationExpired(DomainError):
    code = "invitation_expired"
    title = "The invitation has expired; ask your administrator for a new one."
    http_status = 410


class InvitationUsed(DomainError):
    code = "invitation_used"
    title = "The invitation has already been used or withdrawn."
    http_status = 410


class LastAdmin(DomainError):
    code = "last_admin"
    title = "An enterprise needs at least one admin."


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    accept_url: str  # carries the token: shown once to the admin and mailed, never stored


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _parse_role(role: str) -> str:
    if role not in MemberRole.values:
        raise UnknownRole(f"Unknown role {role!r}; use one of {', '.join(MemberRole.values)}.")
    return role


def _normalise_email(email: str) -> str:
    return get_user_model().objects.normalize_email(email.strip()).lower()


def member_invite(*, actor: AbstractBaseUser, email: str, role: str, site_url: str) -> IssuedInvitation:
    """Invite ``email`` into the actor's enterprise with ``role``; mail the link after commit.

    ``site_url`` is the portal's origin (``https://portal.example``): the link is
    built from it. Inviting an address again withdraws its earlier pending link.
    """
    actor_membership = membership_of(actor)
    role_require(membership=actor_membership, roles=MANAGE_ROLES)
    role = _parse_role(role)
    email = _normalise_email(email)
    _former_login(email)  # refuses an address that is someone's active login
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        _lock_members(actor=actor)
        Invitation.objects.filter(
            enterprise=actor_membership.enterprise, email=email, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            enterprise=actor_membership.enterprise,
            email=email,
            role=role,
            token_hash=_token_hash(token),
            invited_by=actor,
            expires_at=now + settings.INVITATION_TTL,
        )
        accept_url = site_url.rstrip("/") + reverse("corporates:invitation_accept", kwargs={"token": token})
        transaction.on_commit(lambda: _invitation_send(invitation, accept_url))
    return IssuedInvitation(invitation=invitation, accept_url=accept_url)


def _invitation_send(invitation: Invitation, accept_url: str) -> None:
    if settings.INVITATION_LOG_LINKS:
        # Development: no mail server needed, the link is in the log.
        logger.info("invitation %s for %s: %s", invitation.public_id, invitation.email, accept_url)
    send_mail(
        subject=f"You are invited to {invitation.enterprise.legal_name} on Harbourline",
        message=(
            f"{invitation.enterprise.legal_name} invites you to Harbourline as {invitation.get_role_display()}.\n\n"
            f"Set your password here (the link expires {invitation.expires_at:%Y-%m-%d %H:%M %Z}):\n"
            f"{accept_url}\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


def _former_login(email: str) -> AbstractBaseUser | None:
    """The login of someone who was removed from an enterprise (it may be invited again), or None.

    ``MemberAlreadyExists`` when the address belongs to an active login, a
    member of an enterprise, or a back-office account.
    """
    user = get_user_model().objects.filter(username__iexact=email).first()
    if user is None:
        return None
    if user.is_active or user.is_staff or Membership.objects.filter(user=user).exists():
        raise MemberAlreadyExists()
    return user


def invitation_lookup(*, token: str) -> Invitation:
    """The pending invitation behind a link, or the reason it cannot be used."""
    invitation = Invitation.objects.select_related("enterprise").filter(token_hash=_token_hash(token)).first()
    if invitation is None:
        raise InvitationInvalid()
    _require_usable(invitation)
    return invitation


def _require_usable(invitation: Invitation) -> None:
    if not invitation.is_pending:
        raise InvitationUsed()
    if invitation.expires_at <= timezone.now():
        raise InvitationExpired()


def invitation_accept(*, token: str, password: str) -> AbstractBaseUser:
    """Create the invited member's login with ``password``; the link then stops working.

    Raises Django's ``ValidationError`` when the password fails the password
    validators, and the invitation errors above.
    """
    with transaction.atomic():
        # Locked: two clicks on one link create one login.
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("enterprise")
            .filter(token_hash=_token_hash(token))
            .first()
        )
        if invitation is None:
            raise InvitationInvalid()
        _require_usable(invitation)
        user = _former_login(invitation.email)
        if user is None:
            user = get_user_model()(username=invitation.email, email=invitation.email)
        validate_password(password, user=user)
        user.set_password(password)
        user.is_active = True
        user.save()
        # A returning member enrols a new authenticator: the old one left with them.
        TOTPDevice.objects.filter(user=user).delete()
        Membership.objects.create(user=user, enterprise=invitation.enterprise, role=invitation.role)
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
    return user


def invitation_revoke(*, actor: AbstractBaseUser, invitation: Invitation) -> Invitation:
    with transaction.atomic():
        actor_membership, _ = _lock_members(actor=actor)
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk, enterprise=actor_membership.enterprise)
        if not locked.is_pending:
            raise InvitationUsed()
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
    return locked


def _lock_members(*, actor: AbstractBaseUser) -> tuple[Membership, list[Membership]]:
    """Lock every membership of the actor's enterprise (in primary-key order) and re-check the actor.

    Under these locks two admins demoting or removing each other at once
    cannot leave the enterprise without one, and an admin demoted a moment
    ago can no longer act on a role they held when the request began.
    """
    actor_membership = membership_of(actor)
    role_require(membership=actor_membership, roles=MANAGE_ROLES)
    members = list(
        Membership.objects.select_for_update().filter(enterprise_id=actor_membership.enterprise_id).order_by("pk")
    )
    current = next((m for m in members if m.user_id == actor.pk), None)
    if current is None:
        raise RoleNotPermitted("You are no longer a member of this enterprise.")
    role_require(membership=current, roles=MANAGE_ROLES)
    return current, members


def _admins_left_without(members: list[Membership], target: Membership) -> int:
    return sum(1 for m in members if m.role == MemberRole.ADMIN and m.pk != target.pk)


def _target(members: list[Membership], membership: Membership) -> Membership:
    target = next((m for m in members if m.pk == membership.pk), None)
    if target is None:
        raise Membership.DoesNotExist()  # another tenant's member: not found
    return target


def member_change_role(*, actor: AbstractBaseUser, membership: Membership, role: str) -> Membership:
    role_require(membership=membership_of(actor), roles=MANAGE_ROLES)
    role = _parse_role(role)
    with transaction.atomic():
        _, members = _lock_members(actor=actor)
        target = _target(members, membership)
        if role != MemberRole.ADMIN and target.role == MemberRole.ADMIN and not _admins_left_without(members, target):
            raise LastAdmin()
        target.role = role
        target.save(update_fields=["role"])
    return target


def member_remove(*, actor: AbstractBaseUser, membership: Membership) -> None:
    """Remove a member: the membership goes and the login is deactivated (its sessions stop working)."""
    with transaction.atomic():
        _, members = _lock_members(actor=actor)
        target = _target(members, membership)
        if target.role == MemberRole.ADMIN and not _admins_left_without(members, target):
            raise LastAdmin()
        user = target.user
        target.delete()
        # A user belongs to exactly one enterprise: without it the login has no use.
        user.is_active = False
        user.save(update_fields=["is_active"])


# --- two-factor (TOTP) ---------------------------------------------------------


class TwoFactorAlreadySet(DomainError):
    code = "two_factor_already_set"
    title = "Two-factor sign-in is already set up for this login."


class TotpInvalid(DomainError):
    code = "totp_invalid"
    title = "The code is not valid. Codes change every 30 seconds; repeated failures wait longer."
    http_status = 400


def totp_device_pending(*, user: AbstractBaseUser) -> TOTPDevice:
    """The unconfirmed authenticator the member is setting up (created on first call)."""
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise TwoFactorAlreadySet()
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def totp_confirm(*, user: AbstractBaseUser, token: str) -> TOTPDevice:
    """Confirm the pending authenticator with a first code from it."""
    pending = totp_device_pending(user=user)
    with transaction.atomic():
        # Locked, so that concurrent guesses all count against the throttle.
        device = TOTPDevice.objects.select_for_update().get(pk=pending.pk)
        # verify_token throttles repeated failures (django-otp's ThrottlingMixin).
        verified = device.verify_token(token.strip())
        if verified:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    if not verified:
        raise TotpInvalid()
    return device


def totp_verify(*, user: AbstractBaseUser, token: str) -> TOTPDevice:
    """Check a sign-in code against the member's confirmed authenticator."""
    with transaction.atomic():
        # Locked, so that concurrent guesses all count against the throttle and
        # one code cannot be used twice at once.
        for device in TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"):
            # A code is accepted once: verify_token refuses a time step already used.
            if device.verify_token(token.strip()):
                return device
    raise TotpInvalid()

"""Who may do what in the portal. Every page and every service asks here.

Roles (issue 3): an admin manages members, API keys and bank accounts; a maker
initiates payments, swaps and redemptions; a checker approves what a maker
initiated, never their own request; a viewer reads. Everyone who can move
money (admin, maker, checker) signs in with TOTP; a viewer may skip it.

``portal_member`` guards a portal view: signed in, a member of an enterprise,
past two-factor when the role needs it (or when the member has a device),
and holding one of the roles the page allows. Later capabilities decorate
their views with it and call ``approval_check`` in their approval services.

Four eyes across the portal and the API: a request is made and approved by a
*principal*, a user or an API key. The person behind an API key is the admin
who created it (``ApiKey.created_by``); a key with no known creator (made by
the back office, or whose creator was deleted) has nobody behind it and
cannot approve. The approver must be another person than the maker (two keys
of one admin are one person), hold an approving role in the request's
enterprise, and, for a key, be live and carry the operation's scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.cache import add_never_cache_headers
from django_otp import user_has_device

from config.errors import DomainError
from corporates.models import ApiKey, MemberRole, Membership

# Members who can move money must use two-factor sign-in.
MONEY_ROLES = frozenset({MemberRole.ADMIN, MemberRole.MAKER, MemberRole.CHECKER})
MANAGE_ROLES = frozenset({MemberRole.ADMIN})
# Who may initiate a payment, swap or redemption: a maker, or an admin (who can
# make themselves a maker anyway). Four eyes come from approval_check, which
# never lets the initiator approve.
INITIATE_ROLES = frozenset({MemberRole.MAKER, MemberRole.ADMIN})
# Who may approve another person's request: a checker, or an admin (who can
# appoint checkers anyway, so refusing them protects nothing).
APPROVE_ROLES = frozenset({MemberRole.CHECKER, MemberRole.ADMIN})
ALL_ROLES = frozenset(MemberRole)
# Requests that only read; any other method changes something.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotAMember(DomainError):
    code = "not_a_member"
    title = "The user does not belong to an enterprise."
    http_status = 403


class RoleNotPermitted(DomainError):
    code = "role_not_permitted"
    title = "Your role does not allow this."
    http_status = 403


class CheckerIsMaker(DomainError):
    code = "checker_is_maker"
    title = "A request must be approved by someone other than the member who made it."
    http_status = 403


class ApproverUnidentified(DomainError):
    code = "approver_unidentified"
    title = "This API key has no known creator, so there is no person to approve with it."
    http_status = 403


class ApproverKeyRevoked(DomainError):
    code = "api_key_revoked"
    title = "The API key has been revoked."
    http_status = 403


class ApproverScopeMissing(DomainError):
    code = "insufficient_scope"
    title = "The API key does not have the scope this operation needs."
    http_status = 403


# Who makes or approves a request: a portal user or an ERP API key.
Principal = AbstractBaseUser | ApiKey


def membership_of(user: AbstractBaseUser | AnonymousUser, *, with_enterprise: bool = True) -> Membership:
    """The user's membership (with its enterprise), or ``NotAMember``.

    ``with_enterprise=False``: the membership row alone, by one plain statement,
    for a role check on a hot path (a redemption request) that needs only
    ``enterprise_id`` and ``role``; the enterprise still loads if touched.
    """
    if not user.is_authenticated:
        raise NotAMember()
    if not with_enterprise:
        found = list(Membership.objects.raw("SELECT * FROM corporates_membership WHERE user_id = %s", [user.pk]))
        if not found:
            raise NotAMember()
        return found[0]
    try:
        return Membership.objects.select_related("enterprise").get(user_id=user.pk)
    except Membership.DoesNotExist:
        raise NotAMember() from None


def role_requires_two_factor(role: str) -> bool:
    return role in MONEY_ROLES


def role_require(*, membership: Membership, roles: Iterable[str]) -> None:
    """Raise ``RoleNotPermitted`` unless the member holds one of ``roles``."""
    if membership.role not in set(roles):
        raise RoleNotPermitted(f"A {membership.get_role_display().lower()} cannot do this.")


def enterprise_admin_require(*, actor: AbstractBaseUser, enterprise_id: int) -> Membership:
    """Raise ``RoleNotPermitted`` unless ``actor`` is an active admin of that enterprise.

    For services a member triggers (bank accounts, KYB documents): the view's
    ``portal_member(roles=…)`` is the first check, this is the one that holds
    whatever the caller. It reads the membership afresh, inside the caller's
    transaction, so a member demoted or removed a moment ago is refused.
    """
    membership = (
        Membership.objects.select_related("enterprise").filter(user_id=actor.pk, enterprise_id=enterprise_id).first()
    )
    if membership is None or not actor.is_active:
        # Another tenant's admin learns nothing about this enterprise.
        raise RoleNotPermitted("You are not a member of this enterprise.")
    role_require(membership=membership, roles=MANAGE_ROLES)
    return membership


def back_office_require(*, actor: AbstractBaseUser) -> None:
    """Raise ``RoleNotPermitted`` unless ``actor`` is active back-office staff (Django admin's users)."""
    if not (actor.is_active and actor.is_staff):
        raise RoleNotPermitted("Only the back office can do this.")


def principal_person(principal: Principal) -> AbstractBaseUser | None:
    """The person accountable for ``principal``: the user, or the creator of the key (None when unknown)."""
    if isinstance(principal, ApiKey):
        return principal.created_by
    return principal


def _same_principal(one: Principal, other: Principal) -> bool:
    return type(one) is type(other) and one.pk == other.pk


def approval_check(
    *,
    maker: Principal | None,
    checker: Principal,
    enterprise_id: int | None = None,
    scope: str | None = None,
) -> Membership:
    """Refuse an approval unless ``checker`` may approve what ``maker`` made (four eyes).

    ``maker`` and ``checker`` are each a user or an API key; ``maker`` is None
    when nobody we know made the request (the back office). ``enterprise_id``
    is the request's enterprise (default: the maker's). ``scope`` is the
    scope an approving key needs. Refusals, in this order:

    - ``checker_is_maker``: the same key, or the same person behind both;
    - ``api_key_revoked`` / ``insufficient_scope``: an approving key that is revoked or lacks ``scope``;
    - ``approver_unidentified``: an approving key with no known creator;
    - ``not_a_member``: the approving person belongs to no enterprise;
    - ``role_not_permitted``: another enterprise, an inactive person, or a role other than checker or admin.

    Returns the approving person's membership. Services call it under the
    lock of the request they approve, so the roles read here are current.
    """
    maker_person = principal_person(maker) if maker is not None else None
    checker_person = principal_person(checker)
    if maker is not None and _same_principal(maker, checker):
        raise CheckerIsMaker()
    if maker_person is not None and checker_person is not None and maker_person.pk == checker_person.pk:
        raise CheckerIsMaker("The person behind this API key made the request.")
    if enterprise_id is None:
        if maker is None:
            raise ValueError("approval_check needs enterprise_id when the maker is unknown.")
        enterprise_id = maker.enterprise_id if isinstance(maker, ApiKey) else membership_of(maker).enterprise_id
    if isinstance(checker, ApiKey):
        if checker.enterprise_id != enterprise_id:
            raise RoleNotPermitted("The request belongs to another enterprise.")
        if checker.revoked_at is not None:
            raise ApproverKeyRevoked()
        if scope is not None and not checker.has_scope(scope):
            raise ApproverScopeMissing(f"Approving needs the '{scope}' scope.")
        if checker_person is None:
            raise ApproverUnidentified()
    checker_membership = membership_of(checker_person)
    if checker_membership.enterprise_id != enterprise_id:
        # Another tenant's request does not exist as far as this checker knows.
        raise RoleNotPermitted("The request belongs to another enterprise.")
    if not checker_person.is_active:
        raise RoleNotPermitted("The approving person's login is disabled.")
    role_require(membership=checker_membership, roles=APPROVE_ROLES)
    return checker_membership


def two_factor_pending(request: HttpRequest, membership: Membership) -> str | None:
    """Where the member must go before any other page: TOTP set-up or verification, or nowhere."""
    if request.user.is_verified():
        return None
    if user_has_device(request.user, confirmed=True):
        return "corporates:two_factor_verify"
    if role_requires_two_factor(membership.role):
        return "corporates:two_factor_setup"
    return None


def portal_member(
    roles: Iterable[str] = ALL_ROLES,
    *,
    write_roles: Iterable[str] | None = None,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Guard a portal view; the view finds the member's ``Membership`` on ``request.membership``.

    ``roles`` may open the page; ``write_roles`` (default: the same) narrows who
    may POST to it, for a page every member reads but only some act on (bank
    accounts, the application's documents). The guarded view carries both sets
    (``portal_roles``, ``portal_write_roles``), so a test can check every page.
    """
    allowed = frozenset(roles)
    writers = allowed if write_roles is None else allowed & frozenset(write_roles)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            try:
                membership = membership_of(request.user)
            except NotAMember:
                raise PermissionDenied(NotAMember.title) from None
            pending = two_factor_pending(request, membership)
            if pending is not None:
                return redirect(pending)
            if membership.role not in (allowed if request.method in SAFE_METHODS else writers):
                raise PermissionDenied(RoleNotPermitted.title)
            request.membership = membership
            response = view(request, *args, **kwargs)
            # Balances, statements and once-shown secrets stay out of browser and proxy caches.
            add_never_cache_headers(response)
            return response

        guarded.portal_roles = allowed
        guarded.portal_write_roles = writers
        return guarded

    return decorator

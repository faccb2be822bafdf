"""Role guards: who may do what, and the checker who never approves their own request."""

from __future__ import annotations

import pytest

from corporates.api_keys import api_key_create, api_key_revoke
from corporates.permissions import (
    ApproverKeyRevoked,
    ApproverScopeMissing,
    ApproverUnidentified,
    CheckerIsMaker,
    NotAMember,
    RoleNotPermitted,
    approval_check,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_checker_approves_a_makers_request(make_member):
    maker, checker = make_member("maker"), make_member("checker")
    assert approval_check(maker=maker.user, checker=checker.user) == checker


def test_nobody_approves_their_own_request(make_member):
    checker = make_member("checker")
    with pytest.raises(CheckerIsMaker) as refused:
        approval_check(maker=checker.user, checker=checker.user)
    assert refused.value.code == "checker_is_maker"


@pytest.mark.parametrize("role", ["checker", "admin"])
def test_a_checker_or_an_admin_approves(make_member, role):
    maker, approver = make_member("maker"), make_member(role)
    assert approval_check(maker=maker.user, checker=approver.user) == approver


@pytest.mark.parametrize("role", ["maker", "viewer"])
def test_only_a_checker_or_an_admin_approves(make_member, role):
    maker, other = make_member("maker"), make_member(role)
    with pytest.raises(RoleNotPermitted) as refused:
        approval_check(maker=maker.user, checker=other.user)
    assert refused.value.code == "role_not_permitted"


def test_a_checker_of_another_enterprise_cannot_approve(make_member, make_enterprise):
    maker = make_member("maker")
    outsider = make_member("checker", of=make_enterprise())
    with pytest.raises(RoleNotPermitted):
        approval_check(maker=maker.user, checker=outsider.user)


def test_a_login_without_an_enterprise_cannot_approve(make_member):
    with pytest.raises(NotAMember):
        approval_check(maker=make_member("maker").user, checker=UserFactory())


# --- four eyes across API keys: the person behind a key is its creator ---------------------------


def key_of(membership, scopes=("read", "payments")):
    return api_key_create(
        enterprise=membership.enterprise, name="erp", scopes=list(scopes), created_by=membership.user
    ).api_key


def test_two_keys_of_one_admin_are_one_person(make_member):
    admin = make_member("admin")
    maker_key, approver_key = key_of(admin), key_of(admin)
    with pytest.raises(CheckerIsMaker) as refused:
        approval_check(maker=maker_key, checker=approver_key, scope="payments")
    assert refused.value.code == "checker_is_maker"


def test_a_key_cannot_approve_what_it_made(make_member):
    key = key_of(make_member("admin"))
    with pytest.raises(CheckerIsMaker):
        approval_check(maker=key, checker=key)


def test_the_admin_cannot_approve_in_the_portal_what_their_key_made_nor_the_reverse(make_member):
    admin = make_member("admin")
    key = key_of(admin)
    with pytest.raises(CheckerIsMaker):
        approval_check(maker=key, checker=admin.user)
    with pytest.raises(CheckerIsMaker):
        approval_check(maker=admin.user, checker=key, scope="payments")


def test_another_persons_key_approves(make_member):
    maker, other_admin = make_member("maker"), make_member("admin")
    assert approval_check(maker=maker.user, checker=key_of(other_admin), scope="payments") == other_admin
    assert approval_check(maker=key_of(make_member("admin")), checker=other_admin.user) == other_admin


def test_a_key_whose_creator_is_no_longer_an_approver_cannot_approve(make_member):
    maker, creator = make_member("maker"), make_member("admin")
    key = key_of(creator)
    creator.role = "viewer"
    creator.save(update_fields=["role"])
    with pytest.raises(RoleNotPermitted) as refused:
        approval_check(maker=maker.user, checker=key, scope="payments")
    assert refused.value.code == "role_not_permitted"


def test_a_key_without_a_known_creator_cannot_approve(make_member, enterprise):
    key = api_key_create(enterprise=enterprise, name="back office", scopes=["payments"], created_by=None).api_key
    with pytest.raises(ApproverUnidentified) as refused:
        approval_check(maker=make_member("maker").user, checker=key, scope="payments")
    assert refused.value.code == "approver_unidentified"


def test_a_revoked_key_or_one_without_the_scope_cannot_approve(make_member):
    maker, admin = make_member("maker"), make_member("admin")
    read_only = key_of(admin, scopes=["read"])
    with pytest.raises(ApproverScopeMissing) as refused:
        approval_check(maker=maker.user, checker=read_only, scope="payments")
    assert refused.value.code == "insufficient_scope"
    revoked = api_key_revoke(api_key=key_of(admin), revoked_by=admin.user)
    with pytest.raises(ApproverKeyRevoked) as refused:
        approval_check(maker=maker.user, checker=revoked, scope="payments")
    assert refused.value.code == "api_key_revoked"


def test_another_enterprises_key_cannot_approve(make_member, make_enterprise):
    maker = make_member("maker")
    outsider = key_of(make_member("admin", of=make_enterprise()))
    with pytest.raises(RoleNotPermitted):
        approval_check(maker=maker.user, checker=outsider, scope="payments")
    with pytest.raises(RoleNotPermitted):
        approval_check(maker=None, checker=outsider, enterprise_id=maker.enterprise_id)


def test_a_disabled_login_cannot_approve_nor_can_its_key(make_member):
    maker, checker = make_member("maker"), make_member("checker")
    key = api_key_create(
        enterprise=checker.enterprise, name="k", scopes=["payments"], created_by=make_member("admin").user
    ).api_key
    key.created_by.is_active = False
    key.created_by.save(update_fields=["is_active"])
    checker.user.is_active = False
    checker.user.save(update_fields=["is_active"])
    for approver in (checker.user, key):
        with pytest.raises(RoleNotPermitted):
            approval_check(maker=maker.user, checker=approver, scope="payments")

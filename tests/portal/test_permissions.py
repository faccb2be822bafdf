"""Role guards: who may do what, and the checker who never approves their own request."""

from __future__ import annotations

import pytest

from corporates.permissions import CheckerIsMaker, NotAMember, RoleNotPermitted, approval_check
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


@pytest.mark.parametrize("role", ["admin", "maker", "viewer"])
def test_only_a_checker_approves(make_member, role):
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

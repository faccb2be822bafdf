"""membership_of: the full lookup and the lean one a hot path uses for its role check agree."""

from __future__ import annotations

import pytest

from corporates.permissions import NotAMember, membership_of
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("with_enterprise", [True, False])
def test_membership_of_finds_the_member_s_enterprise_and_role(with_enterprise):
    membership = MembershipFactory(role="maker")

    found = membership_of(membership.user, with_enterprise=with_enterprise)

    assert (found.pk, found.enterprise_id, found.role) == (membership.pk, membership.enterprise_id, "maker")
    assert found.enterprise.public_id == membership.enterprise.public_id  # loads on demand when lean


@pytest.mark.parametrize("with_enterprise", [True, False])
def test_membership_of_refuses_a_user_without_one(with_enterprise):
    with pytest.raises(NotAMember):
        membership_of(UserFactory(), with_enterprise=with_enterprise)

"""config.db.raw_instances: the instances raw() would build, from one execution of the statement."""

from __future__ import annotations

import pytest
from django.db import connection

from config.db import raw_instances
from corporates.models import Enterprise, Membership
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_the_same_instances_as_raw_with_extra_columns_as_attributes():
    memberships = [MembershipFactory(), MembershipFactory()]
    sql = (
        "SELECT m.*, e.public_id AS enterprise_public_id FROM corporates_membership m"
        " JOIN corporates_enterprise e ON e.id = m.enterprise_id WHERE m.id IN (%s, %s) ORDER BY m.id"
    )
    params = [m.pk for m in memberships]

    fast = raw_instances(Membership, sql, params)
    slow = list(Membership.objects.raw(sql, params))

    assert [m.pk for m in fast] == [m.pk for m in slow] == params
    for mine, theirs in zip(fast, slow, strict=True):
        for field in Membership._meta.concrete_fields:
            assert getattr(mine, field.attname) == getattr(theirs, field.attname)
        assert mine.enterprise_public_id == theirs.enterprise_public_id == mine.enterprise.public_id
        assert not mine._state.adding and mine._state.db == connection.alias


def test_a_statement_runs_once_and_a_missing_field_is_an_error():
    enterprise = MembershipFactory().enterprise
    # An UPDATE … RETURNING must not run twice (a claim would count twice).
    sql = "UPDATE corporates_enterprise SET legal_name = legal_name || '!' WHERE id = %s RETURNING *"
    (updated,) = raw_instances(Enterprise, sql, [enterprise.pk])
    enterprise.refresh_from_db()
    assert enterprise.legal_name.endswith("!") and not enterprise.legal_name.endswith("!!")
    assert updated.legal_name == enterprise.legal_name

    with pytest.raises(ValueError, match="need the columns"):
        raw_instances(Enterprise, "SELECT id FROM corporates_enterprise WHERE id = %s", [enterprise.pk])

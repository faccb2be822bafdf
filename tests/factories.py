"""factory-boy factories shared by the suite (one section per app)."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from corporates.models import Enterprise, EnterpriseStatus, MemberRole, Membership


class EnterpriseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enterprise

    legal_name = factory.Sequence(lambda n: f"Enterprise {n} Ltd")
    registration_number = factory.Sequence(lambda n: f"REG-{n:06d}")
    jurisdiction = "HK"
    status = EnterpriseStatus.APPLIED


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("correct-horse-battery-staple")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    enterprise = factory.SubFactory(EnterpriseFactory)
    role = MemberRole.MAKER

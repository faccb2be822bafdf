"""Fixtures of the API tests: enterprises with API keys, and clients that send them.

To give the tenant-isolation walk (test_tenancy.py) an object of a new
resource, add a factory to ``TENANT_OBJECT_FACTORIES`` in that module.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from corporates.api_keys import api_key_create
from corporates.models import ApiScope, Enterprise

ALL_SCOPES = list(ApiScope.values)


@pytest.fixture(autouse=True)
def _api_settings(settings):
    # Generous by default (schemathesis sends many requests); the throttling
    # tests lower it themselves.
    settings.API_KEY_RATE_LIMIT = "100000/min"
    settings.WEBHOOK_ALLOW_INSECURE_URLS = True


@pytest.fixture
def make_key() -> Callable[..., str]:
    """A new API key for an enterprise; returns the whole key (the secret)."""

    def make(enterprise: Enterprise, scopes: list[str] | None = None, name: str = "test key") -> str:
        return api_key_create(enterprise=enterprise, name=name, scopes=scopes or ALL_SCOPES, created_by=None).secret

    return make


@pytest.fixture
def make_client(make_key) -> Callable[..., APIClient]:
    """An APIClient authenticated with a new key of ``enterprise``."""

    def make(enterprise: Enterprise, scopes: list[str] | None = None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(enterprise, scopes)}")
        return client

    return make


@pytest.fixture
def enterprise(make_enterprise) -> Enterprise:
    return make_enterprise()


@pytest.fixture
def client_a(enterprise, make_client) -> APIClient:
    return make_client(enterprise)

"""Tenant isolation: every API query is scoped to the caller's enterprise.

Views get their objects through ``EnterpriseScopedMixin.get_queryset``, which
filters the view's ``queryset`` by ``tenant_field`` (``enterprise`` unless the
view says otherwise) before anything else. Another enterprise's object is
then simply not found: 404, never 403 (which would confirm it exists) and
never its data. Objects are looked up by their public id (``<prefix>_…``).
"""

from __future__ import annotations

from django.db.models import QuerySet

from corporates.api.authentication import ApiClient
from corporates.models import Enterprise


def request_enterprise(request) -> Enterprise:
    """The enterprise the API key acts for (authentication guarantees one)."""
    client = request.user
    assert isinstance(client, ApiClient), "API views run behind IsApiClient"
    return client.enterprise


class EnterpriseScopedMixin:
    tenant_field = "enterprise"
    lookup_field = "public_id"
    lookup_url_kwarg = "id"

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()  # type: ignore[misc]
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular introspection: no request user
            return queryset.none()
        return queryset.filter(**{self.tenant_field: request_enterprise(self.request)})  # type: ignore[attr-defined]

"""Scopes: each API key may do only what its scopes allow.

A view names the scope each HTTP method needs in ``required_scopes``; reads
need ``read`` unless the view says otherwise, and a method the view does not
name is refused (secure by default, so a new POST cannot slip through with a
read-only key).
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from corporates.api.authentication import ApiClient
from corporates.models import ApiScope


class InsufficientScope(exceptions.PermissionDenied):
    default_detail = "The API key does not have the scope this operation needs."
    default_code = "insufficient_scope"


class IsApiClient(BasePermission):
    """Authenticated with an API key (not a portal session, not anonymous)."""

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.user, ApiClient):
            raise exceptions.NotAuthenticated()
        return True


class HasScope(BasePermission):
    def has_permission(self, request, view) -> bool:
        scope = required_scope(view, request.method)
        client = request.user
        if scope is None or not isinstance(client, ApiClient) or not client.api_key.has_scope(scope):
            raise InsufficientScope(
                f"This operation needs the '{scope}' scope." if scope else InsufficientScope.default_detail
            )
        return True


def required_scope(view, method: str) -> str | None:
    scopes: dict[str, str] = getattr(view, "required_scopes", {}) or {}
    if method in scopes:
        return scopes[method]
    if method in SAFE_METHODS:
        return ApiScope.READ
    return None

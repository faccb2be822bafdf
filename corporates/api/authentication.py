"""``Authorization: Bearer <API key>``: who is calling, on behalf of which enterprise.

A successful authentication sets ``request.user`` to an ``ApiClient`` (the
enterprise acting through one key) and ``request.auth`` to the ``ApiKey``.
No header at all leaves the request anonymous, and the permission classes
answer 401 ``not_authenticated``; a header with a bad, unknown or revoked key
is 401 with its own code.
"""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from corporates.api_keys import ApiKeyInvalid, ApiKeyRevoked, api_key_authenticate
from corporates.models import ApiKey, Enterprise


@dataclass(frozen=True)
class ApiClient:
    """``request.user`` of an API request: the enterprise, acting through one key."""

    enterprise: Enterprise
    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    @property
    def pk(self) -> str:
        return self.api_key.public_id

    def __str__(self) -> str:
        return f"{self.enterprise.public_id} via {self.api_key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the key as 'Authorization: Bearer <key>'.", code="authorization_malformed"
            )
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(ApiKeyInvalid.title, code=ApiKeyInvalid.code) from None
        try:
            api_key = api_key_authenticate(raw_key=raw_key)
        except (ApiKeyInvalid, ApiKeyRevoked) as exc:
            raise exceptions.AuthenticationFailed(exc.title, code=exc.code) from None
        return ApiClient(enterprise=api_key.enterprise, api_key=api_key), api_key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when the key is missing or wrong.
        return f'{self.keyword} realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the scheme in the OpenAPI schema as ``bearerAuth``."""

    target_class = "corporates.api.authentication.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "hlk_<prefix>_<secret>",
            "description": "An API key created by an enterprise admin in the portal.",
        }

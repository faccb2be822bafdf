"""API keys: create (secret shown once), revoke, and authenticate a presented key.

A key reads ``hlk_<prefix>_<secret>``. The prefix is public (the portal shows
it, so people can tell their keys apart) and finds the row; the SHA-256 hash
of the whole key, compared in constant time, proves it. Only an admin of the
enterprise creates or revokes its keys.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import string
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from config.db import run_in_transaction
from config.errors import DomainError
from corporates.models import ApiKey, ApiScope, Enterprise, MemberRole, Membership

KEY_PREFIX = "hlk"
_ALPHABET = string.ascii_letters + string.digits
_PREFIX_LENGTH = 10
_SECRET_LENGTH = 40  # ~238 bits
# last_used_at is written at most this often per key, so that busy keys do
# not turn every API read into a database write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyInvalid(DomainError):
    code = "api_key_invalid"
    title = "The API key is not valid."
    http_status = 401


class ApiKeyRevoked(DomainError):
    code = "api_key_revoked"
    title = "The API key has been revoked."
    http_status = 401


class ApiKeyScopesInvalid(DomainError):
    code = "api_key_scopes_invalid"
    title = "An API key needs at least one scope, each one of read, payments, fx, redemptions, webhooks."
    http_status = 422


class NotEnterpriseAdmin(DomainError):
    code = "member_not_admin"
    title = "Only an admin of the enterprise may manage its API keys and webhooks."
    http_status = 403


@dataclass(frozen=True)
class ApiKeyCreated:
    api_key: ApiKey
    secret: str  # the whole key; shown once, never stored


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def member_require_admin(*, enterprise: Enterprise, user: AbstractBaseUser | None) -> None:
    """Raise ``NotEnterpriseAdmin`` unless ``user`` is an admin member of ``enterprise``.

    ``user=None`` is the back office or a management command acting for the
    enterprise, which the caller has already authorised.
    """
    if user is None:
        return
    if not Membership.objects.filter(user=user, enterprise=enterprise, role=MemberRole.ADMIN).exists():
        raise NotEnterpriseAdmin()


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    cleaned = sorted(set(scopes))
    if not cleaned or any(scope not in ApiScope.values for scope in cleaned):
        raise ApiKeyScopesInvalid()
    return cleaned


def api_key_create(
    *, enterprise: Enterprise, name: str, scopes: Iterable[str], created_by: AbstractBaseUser | None
) -> ApiKeyCreated:
    """Create a key; the returned ``secret`` is the only time the whole key exists outside the client."""
    member_require_admin(enterprise=enterprise, user=created_by)
    cleaned = _clean_scopes(scopes)
    name = name.strip()[:100] or "API key"

    def create() -> ApiKeyCreated:
        prefix = _random(_PREFIX_LENGTH)
        raw_key = f"{KEY_PREFIX}_{prefix}_{_random(_SECRET_LENGTH)}"
        api_key = ApiKey.objects.create(
            enterprise=enterprise,
            name=name,
            scopes=cleaned,
            prefix=prefix,
            secret_hash=api_key_hash(raw_key),
            created_by=created_by,
        )
        return ApiKeyCreated(api_key=api_key, secret=raw_key)

    return run_in_transaction(create)


def api_key_revoke(*, api_key: ApiKey, revoked_by: AbstractBaseUser | None) -> ApiKey:
    """Revoke a key at once; idempotent (a revoked key keeps its first revocation time)."""
    member_require_admin(enterprise=api_key.enterprise, user=revoked_by)
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=revoked_by
    )
    api_key.refresh_from_db(fields=["revoked_at", "revoked_by"])
    return api_key


@functools.cache
def _api_key_lookup_sql() -> str:
    # Written out once per process: every API request runs this lookup, and
    # compiling the equivalent select_related() queryset cost about a fifth of
    # a whole request's CPU (docs/benchmarks.md, FX). The columns come from the
    # models, so a new field is picked up without touching this.
    key, enterprise = ApiKey._meta, Enterprise._meta
    columns = [f'k."{f.column}"' for f in key.concrete_fields] + [f'e."{f.column}"' for f in enterprise.concrete_fields]
    return (
        f'SELECT {", ".join(columns)} FROM "{key.db_table}" k'
        f' JOIN "{enterprise.db_table}" e ON e."{enterprise.pk.column}" = k."{key.get_field("enterprise").column}"'
        f' WHERE k."{key.get_field("prefix").column}" = %s'
    )


def _instance_from_row(model, alias: str, values, connection):
    """A model instance from its columns, converted as the ORM converts them (JSON, SQLite datetimes)."""
    attnames, converters = _row_converters(model, alias, connection)
    converted = []
    for (col, field_converters), raw in zip(converters, values, strict=True):
        value = raw
        for converter in field_converters:
            value = converter(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, attnames, converted)


_converters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _row_converters(model, alias: str, connection) -> tuple[list[str], list[tuple]]:
    """The model's attnames and, per column, its ORM converters: looked up once per connection object.

    They depend only on the fields and the database backend; asking for them
    on every request cost ~5 % of one (docs/benchmarks.md, FX).
    """
    per_connection = _converters.setdefault(connection, {})
    found = per_connection.get((model, alias))
    if found is None:
        fields = model._meta.concrete_fields
        converters = []
        for field in fields:
            col = field.get_col(alias)
            converters.append((col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)))
        found = per_connection[(model, alias)] = ([f.attname for f in fields], converters)
    return found


def _api_key_by_prefix(prefix: str) -> ApiKey | None:
    """The key with this (unique) prefix, its enterprise loaded, in one statement; None if unknown."""
    connection = connections[ApiKey.objects.db]
    with connection.cursor() as cursor:
        cursor.execute(_api_key_lookup_sql(), [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(ApiKey._meta.concrete_fields)
    api_key = _instance_from_row(ApiKey, "k", row[:split], connection)
    api_key.enterprise = _instance_from_row(Enterprise, "e", row[split:], connection)
    return api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey:
    """The active key matching ``raw_key``; ``ApiKeyInvalid`` or ``ApiKeyRevoked`` otherwise.

    Records the key's last use (at most once a minute).
    """
    parts = raw_key.split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != _PREFIX_LENGTH:
        raise ApiKeyInvalid()
    api_key = _api_key_by_prefix(parts[1])
    # Compare against a dummy hash when the prefix is unknown, so that timing
    # does not tell which prefixes exist.
    stored = api_key.secret_hash if api_key else api_key_hash("")
    if not hmac.compare_digest(stored, api_key_hash(raw_key)) or api_key is None:
        raise ApiKeyInvalid()
    if api_key.revoked_at is not None:
        raise ApiKeyRevoked()
    now = timezone.now()
    if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key

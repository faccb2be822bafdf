"""Flags shared by every process of the platform: set-if-absent with an expiry, and clear.

They live in the ``coordination`` cache: Redis whenever the broker is Redis
(config/settings.py), so a web process can see what a worker did. With no
Redis (the embedded default) the cache is per process and nothing can be
coordinated through it: ``flags_shared()`` says so, and callers fall back to
not coalescing at all.

A flag only ever saves work: losing one (Redis restarted, the key expired)
must cost at most a redundant message, never a lost one.
"""

from __future__ import annotations

import weakref

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

ALIAS = "coordination"

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _redis():
    """The cache's Redis client and the cache, the client built once per cache object.

    Django's ``get_client`` builds a new ``redis.Redis`` on every call (it
    copies ~170 response callbacks): not on a path that runs per request. The
    client is thread-safe and shares the cache's connection pool.
    """
    cache = caches[ALIAS]
    client = _clients.get(cache._cache)
    if client is None:
        client = _clients[cache._cache] = cache._cache.get_client(write=True)
    return client, cache


def flags_shared() -> bool:
    """Whether flags are seen by every process (Redis), not only by this one."""
    return isinstance(caches[ALIAS], RedisCache)


def flag_raise(name: str, *, ttl_seconds: int) -> bool:
    """Set the flag unless it is set (one SET NX EX); True if this call set it."""
    client, cache = _redis()
    return bool(client.set(cache.make_and_validate_key(name), b"1", nx=True, ex=ttl_seconds))


def flag_renew(name: str, *, ttl_seconds: int) -> None:
    """Set the flag, or renew its expiry if it is set (one SET EX)."""
    client, cache = _redis()
    client.set(cache.make_and_validate_key(name), b"1", ex=ttl_seconds)


def flag_lower(name: str) -> None:
    client, cache = _redis()
    client.delete(cache.make_and_validate_key(name))

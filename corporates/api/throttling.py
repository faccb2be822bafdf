"""A per-API-key rate limit: ``API_KEY_RATE_LIMIT`` requests per window, then 429 + Retry-After.

A fixed window counted atomically, so every web worker counts against the
same budget and concurrent requests cannot overshoot it. On Redis (the
``api_throttle`` cache in production) the count is one round trip and one
command per request — a Lua script that runs ``INCR`` and ``EXPIRE``
atomically, called by its SHA — because the throttle runs on every API
request: three round trips, and then a ``MULTI`` pipeline of four commands,
were a measurable part of one (docs/benchmarks.md, FX). Elsewhere (the
embedded default) ``cache.add`` + ``cache.incr``. Requests without a key (the schema, the docs) are not limited
here.
"""

from __future__ import annotations

import time
import weakref

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

from corporates.api.authentication import ApiClient

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(rate: str) -> tuple[int, int]:
    """ "600/min" -> (600, 60)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip().lower()]


class ApiKeyRateThrottle(BaseThrottle):
    cache_alias = "api_throttle"

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        client = request.user
        if not isinstance(client, ApiClient):
            return True
        limit, period = parse_rate(settings.API_KEY_RATE_LIMIT)
        now = time.time()
        window = int(now // period)
        key = f"api-rate:{client.api_key.public_id}:{period}:{window}"
        count = window_count_incr(caches[self.cache_alias], key=key, timeout=period + 5)
        if count <= limit:
            return True
        self._wait = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self._wait


# INCR, then (re-)arm the expiry, as one atomic step: the key never exists
# without its expiry. Re-arming it on every request is harmless: the key names
# its window.
_INCR_WITH_EXPIRY_LUA = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count
"""

_incr_scripts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _redis_incr_script(cache: RedisCache):
    """The counting script on the cache's write client (its first server), built once per cache object.

    Django's ``get_client`` builds a new ``redis.Redis`` on every call, and
    building one copies its table of ~170 response callbacks: a measurable
    share of a request. The client is thread-safe and shares the cache's
    connection pool, which itself reconnects after a fork. The script is
    called by SHA (EVALSHA) and loaded again by redis-py if the server lost it.
    """
    script = _incr_scripts.get(cache._cache)
    if script is None:
        client = cache._cache.get_client(write=True)
        script = _incr_scripts[cache._cache] = client.register_script(_INCR_WITH_EXPIRY_LUA)
    return script


def window_count_incr(cache: BaseCache, *, key: str, timeout: int) -> int:
    """Add one to the counter ``key`` (created at 0, expiring after ``timeout`` s); the new count."""
    if isinstance(cache, RedisCache):
        return int(_redis_incr_script(cache)(keys=[cache.make_and_validate_key(key)], args=[timeout]))
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # the window's key expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1

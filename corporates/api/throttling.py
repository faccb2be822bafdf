"""A per-API-key rate limit: ``API_KEY_RATE_LIMIT`` requests per window, then 429 + Retry-After.

A fixed window counted with ``cache.add`` + ``cache.incr``, both atomic on
Redis (the ``api_throttle`` cache in production), so every web worker
counts against the same budget and concurrent requests cannot overshoot
it. Requests without a key (the schema, the docs) are not limited here.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import caches
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
        cache = caches[self.cache_alias]
        key = f"api-rate:{client.api_key.public_id}:{period}:{window}"
        cache.add(key, 0, timeout=period + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # the window's key expired between add and incr
            cache.add(key, 1, timeout=period + 5)
            count = 1
        if count <= limit:
            return True
        self._wait = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self._wait

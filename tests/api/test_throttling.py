"""The per-key rate limit: 429 with Retry-After, counted per key."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from corporates.api.throttling import parse_rate, window_count_incr

pytestmark = pytest.mark.django_db


def test_the_limit_is_per_key_and_answers_429_with_retry_after(settings, enterprise, make_client):
    settings.API_KEY_RATE_LIMIT = "3/min"
    first, second = make_client(enterprise), make_client(enterprise)

    assert [first.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 200]
    refused = first.get("/api/v1/me")

    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Another key of the same enterprise has its own budget.
    assert second.get("/api/v1/me").status_code == 200


def test_the_schema_is_not_rate_limited(settings, client):
    settings.API_KEY_RATE_LIMIT = "1/min"
    assert all(client.get("/api/v1/schema/").status_code == 200 for _ in range(3))


@pytest.mark.parametrize(("rate", "parsed"), [("600/min", (600, 60)), ("5/s", (5, 1)), ("100/hour", (100, 3600))])
def test_rates_parse(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("backend", ["api_throttle", "locmem"])
def test_a_window_counter_counts_from_one_and_expires(backend):
    # api_throttle is Redis when the tests run with a Redis broker (one round
    # trip per request); locmem is the embedded default's path.
    cache = (
        caches["api_throttle"]
        if backend == "api_throttle"
        else LocMemCache("throttle-test", {})  # the embedded default's backend
    )
    key = f"api-rate:test:{uuid.uuid4().hex}"

    counts = [window_count_incr(cache, key=key, timeout=7) for _ in range(3)]

    assert counts == [1, 2, 3]
    if isinstance(cache, RedisCache):
        full_key = cache.make_and_validate_key(key)
        assert 0 < cache._cache.get_client(full_key).ttl(full_key) <= 7

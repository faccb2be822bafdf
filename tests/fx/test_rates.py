"""Rate sources: the simulated feed's bounded walk, the manual override, a third source, the beat schedule."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django_celery_beat.models import PeriodicTask

from fx import rates as rate_sources_module
from fx import selectors, services, tasks
from fx.models import ManualRate, RateSource, RateTick


def test_simulated_feed_stays_inside_its_bands(rate_sources, now):
    feed = rate_sources_module.SimulatedFeed(rate_sources["simulated"], rng=random.Random(7))
    seen: dict[str, list[Decimal]] = {"HKD": [], "CNH": []}

    for step in range(5000):
        for currency, mid in feed.offer(now=now + timedelta(seconds=step)).items():
            seen[currency].append(mid)

    assert Decimal("7.75") <= min(seen["HKD"]) and max(seen["HKD"]) <= Decimal("7.85")
    assert Decimal("6.95") <= min(seen["CNH"]) and max(seen["CNH"]) <= Decimal("7.25")
    assert len(set(seen["HKD"])) > 10  # it does move
    assert all(isinstance(mid, Decimal) and mid.as_tuple().exponent >= -4 for mid in seen["HKD"])


def test_the_feed_walk_continues_from_its_stored_state(rate_sources, now):
    services.rates_publish(now=now)
    first = RateSource.objects.get(key="simulated").state
    services.rates_publish(now=now + timedelta(seconds=5))

    ticks = RateTick.objects.filter(currency="HKD", source__key="simulated").order_by("published_at")
    assert ticks.count() == 2
    assert abs(ticks[1].mid - Decimal(first["HKD"])) <= Decimal("0.0005") + Decimal("0.0040")  # one bounded step


def test_an_active_manual_rate_overrides_the_feed_until_deactivated(rate_sources, now):
    services.rates_publish(now=now)
    assert selectors.rates_current().sources == {"HKD": "simulated", "CNH": "simulated"}

    services.manual_rate_set(currency="HKD", mid=Decimal("7.8200"), now=now + timedelta(seconds=1))
    current = selectors.rates_current()
    assert current.sources == {"HKD": "manual", "CNH": "simulated"}
    assert current.legs["HKD"] == Decimal("7.8200")

    services.manual_rate_deactivate(manual_rate=ManualRate.objects.get(is_active=True), now=now + timedelta(seconds=2))
    assert selectors.rates_current().sources["HKD"] == "simulated"
    # The history keeps every published leg with its source and time.
    assert list(
        RateTick.objects.filter(currency="HKD").order_by("published_at").values_list("source__key", flat=True)
    ) == ["simulated", "manual", "simulated"]


def test_setting_a_new_manual_rate_replaces_the_previous_one(rate_sources, now):
    services.manual_rate_set(currency="CNH", mid=Decimal("7.1"), now=now)
    services.manual_rate_set(currency="CNH", mid=Decimal("7.2"), now=now)

    assert list(ManualRate.objects.filter(is_active=True).values_list("mid", flat=True)) == [Decimal("7.2")]


def test_an_inactive_source_is_not_asked(rate_sources, now):
    RateSource.objects.filter(key="simulated").update(is_active=False)

    assert services.rates_publish(now=now) == []


def test_a_third_source_is_one_class(rate_sources, now):
    class FixedBankSource(rate_sources_module.RateSourceBase):
        key = "test-bank"

        def offer(self, *, now):
            return {"CNH": Decimal("7.0500")}

    RateSource.objects.create(key="test-bank", name="A bank's screen", priority=50)
    try:
        services.rates_publish(now=now)
        current = selectors.rates_current()
        assert current.sources == {"HKD": "simulated", "CNH": "test-bank"}
        assert current.legs["CNH"] == Decimal("7.0500")
    finally:
        rate_sources_module._REGISTRY.pop("test-bank")


def test_rates_history_returns_points_in_time_order(rate_sources, now):
    for step in range(5):
        services.rates_publish(now=now + timedelta(seconds=5 * step))

    history = selectors.rates_history(currency="HKD", since=now + timedelta(seconds=5))

    assert [point[0] for point in history] == [now + timedelta(seconds=5 * step) for step in range(1, 5)]


@pytest.mark.django_db
def test_the_beat_schedule_exists_from_the_data_migration():
    task = PeriodicTask.objects.get(name="fx: publish rates")
    assert task.task == "fx.rates_publish"
    assert task.interval.every == 5 and task.interval.period == "seconds"
    assert task.enabled
    assert PeriodicTask.objects.filter(name="fx: check inventory floors", task="fx.inventory_floors_check").exists()


def test_the_publish_task_calls_the_service(rate_sources):
    assert tasks.rates_publish_task() == 2
    assert RateTick.objects.count() == 2


@pytest.mark.parametrize(("currency", "mid"), [("HKD", "7.7499"), ("HKD", "7.8501"), ("CNH", "71.00")])
def test_a_manual_rate_outside_its_band_is_refused(rate_sources, now, currency, mid):
    with pytest.raises(services.ManualRateOutOfBounds):
        services.manual_rate_set(currency=currency, mid=Decimal(mid), now=now)
    assert not ManualRate.objects.exists()
    assert not RateTick.objects.exists()


def test_the_edges_of_the_peg_band_are_allowed(rate_sources, now):
    services.manual_rate_set(currency="HKD", mid=Decimal("7.75"), now=now)
    services.manual_rate_set(currency="HKD", mid=Decimal("7.85"), now=now)
    assert selectors.rates_current().legs["HKD"] == Decimal("7.85")

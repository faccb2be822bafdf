"""Rate sources: where the USD legs come from.

A source is one class: a subclass of ``RateSourceBase`` with a ``key`` (the
``fx.RateSource`` row that switches it on and ranks it has the same key) and
``offer()``, which returns the USD legs it offers now ("units of the currency
per 1 USD", Decimal) — all of them, some, or none. ``rates_publish`` in
``fx.services`` asks every active source, lets the highest priority win per
currency, and stores the winners as ticks. Defining the class registers it;
adding a source is writing one class and adding its row in admin
(docs/architecture.md, "FX rate sources").
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings

from fx.models import ManualRate, RateSource

_REGISTRY: dict[str, type[RateSourceBase]] = {}


class RateSourceBase(ABC):
    key: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.key] = cls

    def __init__(self, row: RateSource) -> None:
        self.row = row

    @abstractmethod
    def offer(self, *, now: datetime) -> dict[str, Decimal]:
        """The USD legs this source offers at ``now``. May update ``self.row.state`` (saved by the caller)."""


def source_class(key: str) -> type[RateSourceBase] | None:
    return _REGISTRY.get(key)


def registered_keys() -> list[str]:
    return sorted(_REGISTRY)


class SimulatedFeed(RateSourceBase):
    """A simulated market: each leg takes a bounded random walk around its reference.

    Every call moves each leg by a whole number of ``step`` (at most
    ``max_steps`` either way), pulled back toward the reference by
    ``reversion`` of the distance, and clamped into ``[low, high]`` (for HKD:
    the 7.75–7.85 band of the peg). Decimal arithmetic throughout; the walk's
    position lives in the source row's ``state`` so that every worker
    continues the same walk.
    """

    key = "simulated"

    def __init__(self, row: RateSource, rng: random.Random | None = None) -> None:
        super().__init__(row)
        self.rng = rng or random.Random()

    def offer(self, *, now: datetime) -> dict[str, Decimal]:
        legs: dict[str, Decimal] = {}
        state = dict(self.row.state or {})
        for currency, conf in settings.FX_SIMULATED_LEGS.items():
            reference, low, high = Decimal(conf["reference"]), Decimal(conf["low"]), Decimal(conf["high"])
            step, max_steps = Decimal(conf["step"]), int(conf["max_steps"])
            current = Decimal(state.get(currency, conf["reference"]))
            pull = ((reference - current) * Decimal(conf["reversion"]) / step).to_integral_value() * step
            moved = current + pull + step * self.rng.randint(-max_steps, max_steps)
            legs[currency] = min(max(moved, low), high)
            state[currency] = str(legs[currency])
        self.row.state = state
        return legs


class ManualSource(RateSourceBase):
    """The back office's rates (``ManualRate`` rows, set in admin); only the active ones are offered."""

    key = "manual"

    def offer(self, *, now: datetime) -> dict[str, Decimal]:
        return dict(ManualRate.objects.filter(is_active=True).values_list("currency", "mid"))

"""FX fixtures: a frozen clock, published rates, a funded FX inventory, funded enterprises."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fx import services
from fx.models import RateSource
from settlement.ledger.models import Account, AccountKind
from settlement.ledger.selectors import platform_account

# The injected clock: services take ``now``; tests pass this (or a moment next to it).
T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

LEGS = {"HKD": Decimal("7.8123"), "CNH": Decimal("7.1042")}


@pytest.fixture
def now() -> datetime:
    return T0


@pytest.fixture
def rate_sources(db) -> dict[str, RateSource]:
    """The two sources the data migration creates (re-created here: transactional tests flush tables)."""
    return {
        "simulated": RateSource.objects.get_or_create(
            key="simulated", defaults={"name": "Simulated market feed", "priority": 10}
        )[0],
        "manual": RateSource.objects.get_or_create(
            key="manual", defaults={"name": "Manual rates (back office)", "priority": 100}
        )[0],
    }


@pytest.fixture
def publish(rate_sources) -> Callable[..., None]:
    """Publish USD legs at a moment, through the manual source (the back office's way in)."""

    def do_publish(*, at: datetime = T0, legs: dict[str, Decimal] | None = None) -> None:
        for currency, mid in (legs or LEGS).items():
            services.manual_rate_set(currency=currency, mid=mid, now=at)

    return do_publish


@pytest.fixture
def rates(publish) -> dict[str, Decimal]:
    publish()
    return LEGS


@pytest.fixture
def inventory(platform, mint) -> dict[str, Account]:
    """The platform's FX inventory, funded in every currency."""
    funded = {"HKD": "50000000.00", "USD": "6500000.00", "CNH": "45000000.00"}
    for currency, amount in funded.items():
        mint(platform_account(kind=AccountKind.FX_INVENTORY, currency=currency), amount)
    return {code: platform_account(kind=AccountKind.FX_INVENTORY, currency=code) for code in funded}


@pytest.fixture
def funded(make_enterprise, mint):
    """An approved enterprise holding 1,000,000.00 of every currency."""

    def make(**balances: str):
        enterprise = make_enterprise()
        for currency in ("HKD", "USD", "CNH"):
            amount = balances.get(currency, "1000000.00")
            if Decimal(amount) > 0:
                mint(enterprise, amount, currency)
        return enterprise

    return make


@pytest.fixture
def api_client_for(settings):
    """An APIClient sending a new API key of the enterprise (every scope unless told)."""
    from rest_framework.test import APIClient

    from corporates.api_keys import api_key_create
    from corporates.models import ApiScope

    settings.API_KEY_RATE_LIMIT = "100000/min"

    def make(enterprise, scopes=None):
        key = api_key_create(
            enterprise=enterprise, name="fx test", scopes=scopes or list(ApiScope.values), created_by=None
        ).secret
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    return make


@pytest.fixture(params=["lean", "orm"])
def sql_path(request, settings) -> str:
    """Run a test through both accept paths: lean SQL on PostgreSQL, and the portable ORM path."""
    settings.FX_SQL_PATH = "auto" if request.param == "lean" else "orm"
    return request.param

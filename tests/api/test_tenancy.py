"""Tenant isolation: every registered /api/v1/ endpoint, called with another enterprise's key.

The walk finds the endpoints itself (the URL resolver), so a new endpoint is
covered the day it is added. An endpoint whose path names an object (``{id}``)
needs a way to create such an object for the first enterprise: define
``TENANT_OBJECT_FACTORIES = {"<app>.<Model>": lambda enterprise: <public id>}``
in ``tests/<app>/tenancy.py`` (keyed by the model of the view's queryset; a
plain APIView under ``…/{id}/verb`` takes the model of ``…/{id}``). The test
fails, naming the endpoint, until you do.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from corporates.models import Enterprise
from corporates.onboarding.banking import bank_account_register
from corporates.webhooks import event_emit, webhook_endpoint_create

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"
NOT_TENANT_DATA = {"schema/", "docs/", "redoc/"}  # public: the schema and its viewers
METHODS = ("get", "post", "put", "patch", "delete")
# Path parameters that are not object ids, with a value to try.
PATH_VALUES = {"currency": "HKD"}


def _fx_quote(enterprise: Enterprise) -> str:
    # Imported here: the walk must not depend on fx when fx has no endpoints.
    from fx import services as fx_services
    from fx.models import RateSource
    from settlement.ledger.models import AccountKind, EntryKind
    from settlement.ledger.selectors import platform_account
    from settlement.ledger.services import ledger_post, legs_debit_credit

    RateSource.objects.get_or_create(key="manual", defaults={"name": "Manual rates", "priority": 100})
    now = timezone.now()
    for currency, mid in {"HKD": Decimal("7.8123"), "CNH": Decimal("7.1042")}.items():
        fx_services.manual_rate_set(currency=currency, mid=mid, now=now)
    ledger_post(
        idempotency_key="tenancy-fx-inventory",
        kind=EntryKind.MINT,
        legs=legs_debit_credit(
            debit=platform_account(kind=AccountKind.RESERVE, currency="USD"),
            credit=platform_account(kind=AccountKind.FX_INVENTORY, currency="USD"),
            minor=100_000_000_00,
        ),
    )
    quote = fx_services.quote_create(
        enterprise=enterprise, sell_currency="HKD", buy_currency="USD", sell_amount=Decimal("100.00"), now=now
    )
    return quote.public_id


def _redemption(enterprise: Enterprise) -> str:
    from corporates.api_keys import api_key_create
    from corporates.onboarding.banking import bank_account_verify
    from settlement.ledger.models import AccountKind, EntryKind
    from settlement.ledger.selectors import platform_account, wallet_for
    from settlement.ledger.services import ledger_post, legs_debit_credit
    from settlement.redemptions.services import Actor, redemption_request

    ledger_post(
        idempotency_key=f"tenancy-redemption-funds:{enterprise.public_id}",
        kind=EntryKind.MINT,
        legs=legs_debit_credit(
            debit=platform_account(kind=AccountKind.RESERVE, currency="HKD"),
            credit=wallet_for(enterprise=enterprise, currency="HKD"),
            minor=10_000,
        ),
    )
    account = bank_account_register(
        enterprise=enterprise, holder_name="A Holdings Ltd", bank_name="Bank A", account_number="87654321",
        currency="HKD",
    )  # fmt: skip
    bank_account_verify(bank_account=account)
    key = api_key_create(enterprise=enterprise, name="tenancy", scopes=["redemptions"], created_by=None).api_key
    redemption = redemption_request(
        enterprise=enterprise, amount=Decimal("10.00"), currency="HKD", bank_account=account,
        actor=Actor(api_key=key),
    )  # fmt: skip
    return redemption.public_id


TENANT_OBJECT_FACTORIES: dict[str, Callable[[Enterprise], str]] = {
    "fx.Quote": _fx_quote,
    "settlement.Redemption": _redemption,
    "corporates.WebhookEndpoint": lambda enterprise: webhook_endpoint_create(
        enterprise=enterprise, url="https://a.example.com/hooks", event_types=["*"], created_by=None
    ).public_id,
    "corporates.WebhookEvent": lambda enterprise: event_emit(
        enterprise=enterprise, type="test.created", data={"secret": "of enterprise A"}
    ).public_id,
    "corporates.BankAccount": lambda enterprise: bank_account_register(
        enterprise=enterprise, holder_name="A Holdings Ltd", bank_name="Bank A", account_number="12345678",
        currency="HKD",
    ).public_id,
}  # fmt: skip


def tenant_object_factories() -> dict[str, Callable[[Enterprise], str]]:
    """The factories above, plus each app's own from ``tests/<app>/tenancy.py`` (``TENANT_OBJECT_FACTORIES``)."""
    factories = dict(TENANT_OBJECT_FACTORIES)
    for app in apps.get_app_configs():
        try:
            module = importlib.import_module(f"tests.{app.label}.tenancy")
        except ModuleNotFoundError:
            continue
        factories.update(getattr(module, "TENANT_OBJECT_FACTORIES", {}))
    return factories


def api_routes() -> Iterator[tuple[str, type]]:
    """(route, DRF view class) of every URL under /api/v1/."""

    def walk(patterns, prefix: str) -> Iterator[tuple[str, object]]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield route, pattern.callback

    for route, callback in walk(get_resolver().url_patterns, ""):
        if route.startswith(API_PREFIX) and route[len(API_PREFIX) :] not in NOT_TENANT_DATA:
            view_class = getattr(callback, "cls", None)
            assert view_class is not None, f"/{route} is not a DRF view"
            yield route, view_class


def _model_label(view_class, route: str | None = None) -> str | None:
    """The model whose id the route takes: the view's queryset model, else that of the object's own route.

    ``fx/quotes/<str:id>/accept`` may be a plain APIView; ``fx/quotes/<str:id>``
    then says what the id is.
    """
    queryset = getattr(view_class, "queryset", None)
    if queryset is not None:
        return queryset.model._meta.label
    if route and "<str:id>/" in route:
        parent = route[: route.index("<str:id>/") + len("<str:id>")]
        return next((_model_label(cls) for r, cls in api_routes() if r == parent), None)
    return None


def _fill(route: str, object_id: str | None) -> str:
    path = route
    while "<" in path:
        start, end = path.index("<"), path.index(">")
        name = path[start + 1 : end].split(":")[-1]
        value = object_id if name == "id" else PATH_VALUES.get(name)
        assert value is not None, f"/{route}: no value for path parameter {name!r}; add it to PATH_VALUES"
        path = path[:start] + value + path[end + 1 :]
    return "/" + path


@pytest.fixture
def tenants(make_enterprise, make_client, mint):
    a, b = make_enterprise(), make_enterprise()
    mint(a, "123.45", "HKD")  # A's ledger entries must not show in B's reads
    ids: dict[str, str] = {}
    models_in_use = {_model_label(view_class) for _, view_class in api_routes()}
    for label, factory in tenant_object_factories().items():
        if label in models_in_use:
            ids[label] = factory(a)
    secrets_of_a = {a.public_id, a.legal_name, *ids.values()}
    secrets_of_a |= set(a.accounts.values_list("postings__entry__public_id", flat=True)) - {None}
    return {"a": a, "b": b, "ids": ids, "client_b": make_client(b), "secrets_of_a": secrets_of_a}


def test_the_walk_finds_the_endpoints():
    routes = {route for route, _ in api_routes()}
    assert {"api/v1/me", "api/v1/balances", "api/v1/webhook-endpoints/<str:id>", "api/v1/bank-accounts"} <= routes


def test_another_enterprises_objects_are_404_and_never_leak(tenants):
    client_b, ids, secrets_of_a = tenants["client_b"], tenants["ids"], tenants["secrets_of_a"]
    checked = 0
    for route, view_class in api_routes():
        has_id = "<str:id>" in route or "<id>" in route
        object_id = None
        if has_id:
            label = _model_label(view_class, route)
            assert label in ids, f"/{route}: add a factory for {label} to tests/<app>/tenancy.py"
            object_id = ids[label]
        path = _fill(route, object_id)
        for method in METHODS:
            if not hasattr(view_class, method):
                continue
            response = getattr(client_b, method)(path, {}, format="json", HTTP_IDEMPOTENCY_KEY=f"t-{method}-{path}")
            # The problem's "instance" echoes the path the caller sent; that is not a leak.
            text = response.content.decode().replace(path, "")
            leaked = [secret for secret in secrets_of_a if secret in text]
            assert not leaked, f"{method.upper()} {path} leaked {leaked}"
            if has_id:
                assert response.status_code == 404, f"{method.upper()} {path} -> {response.status_code}, not 404"
            else:
                assert response.status_code != 403, f"{method.upper()} {path} -> 403"
            checked += 1
    assert checked >= 10


def test_every_api_endpoint_needs_a_key(client):
    for route, view_class in api_routes():
        path = _fill(route, "x_unknown")
        for method in METHODS:
            if hasattr(view_class, method):
                response = getattr(client, method)(path)
                assert response.status_code == 401, f"{method.upper()} {path} -> {response.status_code}"


def test_every_post_is_idempotent():
    for route, view_class in api_routes():
        if hasattr(view_class, "post"):
            assert getattr(view_class.post, "idempotent", False), f"POST /{route} is not @idempotent"

"""The back office: every FX admin page renders; a manual rate saved in admin is published at once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from fx import selectors
from fx.models import InventoryAlert, ManualRate

PAGES = [
    "ratesource",
    "ratetick",
    "manualrate",
    "pricingtier",
    "enterprisefxterms",
    "inventoryfloor",
    "inventoryalert",
    "quote",
    "swap",
]


@pytest.mark.parametrize("model", PAGES)
def test_changelists_render(admin_client, rate_sources, inventory, model):
    response = admin_client.get(reverse(f"admin:fx_{model}_changelist"))
    assert response.status_code == 200


def test_inventory_page_shows_balance_floor_and_alerts(admin_client, inventory, now):
    from fx import services

    services.inventory_alert_raise(currency="USD", kind="below_floor", balance=Decimal(1), floor=Decimal(2), now=now)

    page = admin_client.get(reverse("admin:fx_inventoryfloor_changelist")).content.decode()

    assert "6500000.00 USD" in page and "50000000.00 HKD" in page


def test_a_manual_rate_added_in_admin_overrides_the_feed_at_once(admin_client, rate_sources):
    response = admin_client.post(
        reverse("admin:fx_manualrate_add"), {"currency": "HKD", "mid": "7.8050", "note": "peg defence"}
    )

    assert response.status_code == 302
    assert ManualRate.objects.get(is_active=True).mid == Decimal("7.8050")
    current = selectors.rates_current()
    assert (current.legs["HKD"], current.sources["HKD"]) == (Decimal("7.8050000000"), "manual")


def test_alerts_are_acknowledged_by_an_action(admin_client, inventory, now):
    from fx import services

    alert = services.inventory_alert_raise(
        currency="HKD", kind="quote_refused", balance=Decimal(1), floor=Decimal(2), now=now
    )

    admin_client.post(
        reverse("admin:fx_inventoryalert_changelist"), {"action": "acknowledge", "_selected_action": [alert.pk]}
    )

    assert InventoryAlert.objects.get(pk=alert.pk).acknowledged_at is not None


def test_deactivating_a_manual_rate_in_admin_hands_back_to_the_feed(admin_client, rate_sources):
    admin_client.post(reverse("admin:fx_manualrate_add"), {"currency": "CNH", "mid": "7.2500", "note": ""})
    manual = ManualRate.objects.get(is_active=True)

    admin_client.post(
        reverse("admin:fx_manualrate_changelist"), {"action": "deactivate", "_selected_action": [manual.pk]}
    )

    assert not ManualRate.objects.filter(is_active=True).exists()
    assert selectors.rates_current().sources["CNH"] == "simulated"


def test_admin_refuses_a_manual_rate_outside_the_peg_band(admin_client, rate_sources):
    response = admin_client.post(reverse("admin:fx_manualrate_add"), {"currency": "HKD", "mid": "8.7800", "note": ""})

    assert response.status_code == 200
    assert "must be between 7.75 and 7.85" in response.content.decode()
    assert not ManualRate.objects.exists()


def test_a_source_row_names_a_registered_class(admin_client, rate_sources):
    page = admin_client.get(reverse("admin:fx_ratesource_add")).content.decode()
    assert '<option value="simulated">' in page and '<option value="manual">' in page

    response = admin_client.post(
        reverse("admin:fx_ratesource_add"), {"key": "no-such-source", "name": "Typo", "priority": 5, "is_active": "on"}
    )
    assert response.status_code == 200  # the form refuses it

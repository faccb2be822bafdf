"""Portal pages of fx: swap with a live quote and confirm, rates with an SVG chart, history with CSV."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from corporates.models import MemberRole
from fx.models import Quote, Swap
from tests.factories import MembershipFactory


@pytest.fixture
def member_client(settings):
    """A signed-in member past two-factor (a confirmed TOTP device on the session)."""
    settings.FX_RATES_STALE_AFTER_SECONDS = 10**9  # rates are published at the tests' T0

    def make(enterprise, role=MemberRole.MAKER) -> Client:
        membership = MembershipFactory(enterprise=enterprise, role=role)
        device = TOTPDevice.objects.create(user=membership.user, name="app", confirmed=True)
        client = Client()
        client.force_login(membership.user, backend="django.contrib.auth.backends.ModelBackend")
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        return client

    return make


def test_swap_page_quote_countdown_and_confirm(funded, rates, inventory, member_client):
    enterprise = funded()
    client = member_client(enterprise)

    page = client.get("/fx/")
    assert page.status_code == 200 and b"Get a quote" in page.content
    assert "<strong>1,000,000.00 USD</strong>" in page.content.decode()  # what the enterprise holds

    quoted = client.post(
        "/fx/quotes/", {"sell_currency": "USD", "buy_currency": "HKD", "fixed_side": "sell", "amount": "1000.00"}
    )
    quote = Quote.objects.get(enterprise=enterprise)
    assert quoted.status_code == 302 and quoted["Location"] == f"/fx/quotes/{quote.public_id}/"

    shown = client.get(quoted["Location"]).content.decode()
    assert "1,000.00 USD" in shown and "7,788.86 HKD" in shown
    assert 'data-testid="countdown"' in shown
    remaining = int(re.search(r'data-remaining-ms="(\d+)"', shown).group(1))
    assert 0 < remaining <= 30_000
    assert "Confirm: pay 1,000.00 USD, receive 7,788.86 HKD" in shown
    assert 'id="requote-form"' in shown  # the page re-quotes itself when the countdown ends

    confirmed = client.post(f"/fx/quotes/{quote.public_id}/accept/")
    swap = Swap.objects.get()
    assert confirmed.status_code == 302 and confirmed["Location"] == f"/fx/swaps/#{swap.public_id}"
    history = client.get("/fx/swaps/").content.decode()
    assert swap.public_id in history and "Swapped 1,000.00 USD for 7,788.86 HKD" in history


def test_expired_quote_cannot_be_confirmed_and_offers_a_new_one(funded, rates, inventory, member_client, settings):
    enterprise = funded()
    client = member_client(enterprise)
    settings.FX_QUOTE_TTL_SECONDS = 0.001
    client.post("/fx/quotes/", {"sell_currency": "USD", "buy_currency": "CNH", "fixed_side": "buy", "amount": "10.00"})
    quote = Quote.objects.get()

    response = client.post(f"/fx/quotes/{quote.public_id}/accept/", follow=True)

    assert not Swap.objects.exists()
    page = response.content.decode()
    assert "expired" in page and 'id="requote-form"' in page and "disabled" in page


def test_a_viewer_cannot_swap(funded, rates, inventory, member_client):
    client = member_client(funded(), role=MemberRole.VIEWER)

    assert b"a maker or an admin swaps" in client.get("/fx/").content
    response = client.post(
        "/fx/quotes/", {"sell_currency": "USD", "buy_currency": "HKD", "fixed_side": "sell", "amount": "1.00"}
    )
    assert response.status_code == 403
    assert not Quote.objects.exists()


def test_another_tenants_quote_page_is_404(funded, rates, inventory, member_client):
    owner, other = funded(), funded()
    member_client(owner).post(
        "/fx/quotes/", {"sell_currency": "USD", "buy_currency": "HKD", "fixed_side": "sell", "amount": "1.00"}
    )
    quote = Quote.objects.get()
    intruder = member_client(other)

    assert intruder.get(f"/fx/quotes/{quote.public_id}/").status_code == 404
    assert intruder.post(f"/fx/quotes/{quote.public_id}/accept/").status_code == 404
    assert not Swap.objects.exists()


def test_bad_amount_is_a_form_error(funded, rates, inventory, member_client):
    response = member_client(funded()).post(
        "/fx/quotes/", {"sell_currency": "USD", "buy_currency": "HKD", "fixed_side": "sell", "amount": "1.005"}
    )
    assert response.status_code == 400
    assert b"decimal places" in response.content


def test_rates_page_draws_the_history_as_inline_svg(funded, publish, member_client, now):
    start = timezone.now() - timedelta(minutes=10)
    for step, mid in enumerate(["7.8100", "7.8150", "7.8120"]):
        publish(at=start + timedelta(minutes=step), legs={"HKD": Decimal(mid), "CNH": Decimal("7.1")})

    page = member_client(funded()).get("/fx/rates/").content.decode()

    assert 'data-testid="chart-HKD"' in page and "<polyline" in page
    assert "high 7.8150" in page and "low 7.8100" in page
    assert "http://" not in page.split("<svg", 1)[1].split("</svg>", 1)[0].replace("http://www.w3.org", "")


def test_history_csv(funded, rates, inventory, member_client):
    enterprise = funded()
    client = member_client(enterprise)
    client.post(
        "/fx/quotes/", {"sell_currency": "HKD", "buy_currency": "CNH", "fixed_side": "sell", "amount": "500.00"}
    )
    client.post(f"/fx/quotes/{Quote.objects.get().public_id}/accept/")

    response = client.get("/fx/swaps/", {"currency": "CNH", "format": "csv"})

    lines = b"".join(response.streaming_content).decode().splitlines()
    assert response["Content-Type"].startswith("text/csv")
    assert len(lines) == 2 and ",500.00,HKD," in lines[1]


def test_the_quote_page_warns_when_the_wallet_is_short(funded, rates, inventory, member_client):
    client = member_client(funded(USD="10.00"))
    client.post("/fx/quotes/", {"sell_currency": "USD", "buy_currency": "HKD", "fixed_side": "sell", "amount": "10.01"})

    page = client.get(f"/fx/quotes/{Quote.objects.get().public_id}/").content.decode()

    assert 'data-testid="short-of-funds"' in page

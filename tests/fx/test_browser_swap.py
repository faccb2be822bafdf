"""The swap page in a real browser (Debian's chromium): live quote, countdown, re-quote on expiry, confirm."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from corporates.models import MemberRole
from fx.models import Quote, Swap
from tests.browser.conftest import _chromium, page  # noqa: F401 - the browser fixtures, shared
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, live_server, enterprise) -> None:  # noqa: F811 - page is the fixture's value
    """A maker past two-factor: the session is made server-side and handed to the browser as its cookie."""
    membership = MembershipFactory(enterprise=enterprise, role=MemberRole.MAKER)
    device = TOTPDevice.objects.create(user=membership.user, name="app", confirmed=True)
    client = Client()
    client.force_login(membership.user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    page.context.add_cookies([{"name": "sessionid", "value": session.session_key, "url": live_server.url}])


def test_quote_counts_down_requotes_on_expiry_and_confirms(
    page,  # noqa: F811
    live_server,
    funded,
    rates,
    inventory,
    settings,
):
    settings.FX_RATES_STALE_AFTER_SECONDS = 10**9  # rates are published at the tests' T0
    settings.FX_QUOTE_TTL_SECONDS = 3
    enterprise = funded()
    _sign_in(page, live_server, enterprise)

    page.goto("/fx/")
    page.get_by_label("Pay in").select_option("USD")
    page.get_by_label("Receive in").select_option("HKD")
    page.locator("#id_amount").fill("1000.00")
    page.get_by_role("button", name="Get a quote").click()

    page.wait_for_url(re.compile(r"/fx/quotes/fxq_\w+/$"))
    first_url = page.url
    assert page.get_by_test_id("buy-amount").inner_text() == "7,788.86 HKD"
    countdown = page.get_by_test_id("countdown")
    assert re.search(r"Valid for [1-3] more seconds?\.", countdown.inner_text())

    # No click: when the countdown ends the page asks for a new quote by itself
    # (firm for 30 s this time, so that confirming below is not a race).
    settings.FX_QUOTE_TTL_SECONDS = 30
    page.wait_for_url(lambda url: url != first_url and "/fx/quotes/fxq_" in url, timeout=10_000)
    assert Quote.objects.filter(enterprise=enterprise).count() == 2

    seconds_left = re.search(r"Valid for (\d+) more seconds?\.", page.get_by_test_id("countdown").inner_text())
    assert 10 <= int(seconds_left.group(1)) <= 30
    page.get_by_role("button", name=re.compile(r"^Confirm: pay 1,000\.00 USD, receive 7,788\.86 HKD")).click()

    page.wait_for_url(re.compile(r"/fx/swaps/"))
    swap = Swap.objects.get()
    assert swap.quote.public_id not in first_url  # the re-quote was confirmed, not the expired first quote
    assert page.locator(f"tr#{swap.public_id}").is_visible()
    assert "Swapped 1,000.00 USD for 7,788.86 HKD" in page.content()

"""Every portal page of an enterprise is behind portal_member(roles=…); sign-in and home lead where they should."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from corporates.models import EnterpriseStatus

pytestmark = pytest.mark.django_db

# Pages anyone may open (sign-in and its steps, applying, an invitation), the
# document view (members and the back office; its own check) and the bank's
# signed webhook. Everything else in the portal is an enterprise's page.
PUBLIC = {
    "corporates:login",
    "corporates:logout",
    "corporates:two_factor_verify",
    "corporates:two_factor_setup",
    "corporates:invitation_accept",
    "corporates:apply",
    "corporates:kyb_document",
    "bank-webhook",
}
PORTAL_NAMESPACES = {"corporates", "fx", "settlement", None}
SAMPLE_ARGS = {"currency": "HKD", "member_id": "1"}


def portal_pages() -> list[tuple[str, str, object]]:
    """(name, url, view) of every portal URL: all but admin and the API."""
    found = []

    def walk(patterns, prefix, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                route = str(pattern.pattern)
                if route.startswith(("admin/", "api/")):
                    continue
                walk(pattern.url_patterns, prefix + route, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and namespace in PORTAL_NAMESPACES:
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                converters = pattern.pattern.converters
                kwargs = {key: SAMPLE_ARGS.get(key, "x_sample") for key in converters}
                found.append((name, reverse(name, kwargs=kwargs), pattern.callback))

    walk(get_resolver().url_patterns, "", None)
    return found


PAGES = [(name, url) for name, url, view in portal_pages() if name not in PUBLIC]


def test_the_walk_finds_the_pages_of_every_app():
    names = {name for name, _ in PAGES}
    assert {"corporates:dashboard", "corporates:bank_accounts", "fx:swap", "settlement:redemptions"} <= names


def test_every_enterprise_page_is_guarded_by_portal_member():
    unguarded = [name for name, _, view in portal_pages() if name not in PUBLIC and not hasattr(view, "portal_roles")]
    assert unguarded == []


@pytest.mark.parametrize(("name", "url"), PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, name, url):
    # POST: some pages take nothing else, and the guard answers before any view reads the form.
    response = client.post(url)
    assert response.status_code == 302, name
    assert response["Location"].startswith(reverse("corporates:login")), name


@pytest.mark.parametrize(("name", "url"), PAGES)
def test_a_password_alone_opens_no_page_of_a_money_role(make_member, name, url):
    client = Client()
    client.force_login(make_member("admin").user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(url)
    assert response.status_code == 302, name
    assert response["Location"] == reverse("corporates:two_factor_setup"), name


def test_the_sign_in_page_links_to_the_application_form(client):
    page = client.get(reverse("corporates:login")).content.decode()
    assert f'href="{reverse("corporates:apply")}"' in page


@pytest.mark.parametrize("status", [EnterpriseStatus.APPLIED, EnterpriseStatus.UNDER_REVIEW, EnterpriseStatus.REJECTED])
def test_a_member_of_an_enterprise_never_approved_is_sent_to_its_status_page(
    make_member, portal_client, enterprise, status
):
    type(enterprise).objects.filter(pk=enterprise.pk).update(status=status)
    client = portal_client(make_member("viewer"))
    for url in (reverse("corporates:dashboard"), reverse("corporates:statement", args=["HKD"])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == reverse("corporates:application_status")
    page = client.get(reverse("corporates:application_status"))
    assert f'data-testid="kyb-status">{enterprise.__class__(status=status).get_status_display()}<' in (
        page.content.decode()
    )


def test_a_frozen_enterprise_keeps_its_dashboard_with_the_freeze_shown(make_member, portal_client, enterprise):
    type(enterprise).objects.filter(pk=enterprise.pk).update(status=EnterpriseStatus.FROZEN)
    page = portal_client(make_member("viewer")).get(reverse("corporates:dashboard"))
    assert page.status_code == 200
    assert "frozen: no money can move" in page.content.decode()
    assert 'data-testid="balance-HKD"' in page.content.decode()


@pytest.mark.parametrize("role", ["maker", "checker", "viewer"])
def test_every_member_reads_the_bank_accounts_but_only_an_admin_posts(make_member, portal_client, role):
    client = portal_client(make_member(role))
    assert client.get(reverse("corporates:bank_accounts")).status_code == 200
    form = {"holder_name": "Victoria Harbour Trading Ltd", "bank_name": "HSBC", "account_number": "004123456789001"}
    assert client.post(reverse("corporates:bank_accounts"), {**form, "currency": "HKD"}).status_code == 403


def test_write_roles_are_a_subset_of_the_roles_that_open_the_page():
    views = {name: view for name, _, view in portal_pages() if hasattr(view, "portal_roles")}
    bank_accounts = views["corporates:bank_accounts"]
    assert bank_accounts.portal_write_roles == {"admin"} and len(bank_accounts.portal_roles) == 4
    for name, view in views.items():
        assert view.portal_write_roles <= view.portal_roles, name

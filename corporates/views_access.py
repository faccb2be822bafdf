"""Portal pages for ERP access: API keys and webhook endpoints (admins only).

Thin over corporates.api_keys and corporates.webhooks. A secret (API key or
webhook signing secret) is shown exactly once, on the page after creation,
through the session, and never again.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from config.errors import DomainError
from corporates import api_keys as api_key_services
from corporates import webhooks as webhook_services
from corporates.forms import ApiKeyForm, WebhookEndpointForm
from corporates.models import ApiKey, WebhookEndpoint, WebhookEvent
from corporates.permissions import MANAGE_ROLES, portal_member

ONCE_SESSION_KEY = "portal_secret_once"
RECENT_EVENTS = 25


def _secret_once(request: HttpRequest, kind: str) -> str | None:
    stored = request.session.get(ONCE_SESSION_KEY)
    if stored and stored.get("kind") == kind:
        del request.session[ONCE_SESSION_KEY]
        return stored["secret"]
    return None


# --- API keys ------------------------------------------------------------------


def _api_keys_page(request: HttpRequest, form: ApiKeyForm, status: int = 200) -> HttpResponse:
    enterprise = request.membership.enterprise
    context = {
        "enterprise": enterprise,
        "form": form,
        "keys": ApiKey.objects.filter(enterprise=enterprise).select_related("created_by", "revoked_by"),
        "secret": _secret_once(request, "api_key"),
    }
    return render(request, "portal/api_keys.html", context, status=status)


@portal_member(roles=MANAGE_ROLES)
def api_keys(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _api_keys_page(request, ApiKeyForm())
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            created = api_key_services.api_key_create(
                enterprise=request.membership.enterprise,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                created_by=request.user,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            request.session[ONCE_SESSION_KEY] = {"kind": "api_key", "secret": created.secret}
            messages.success(request, f"API key “{created.api_key.name}” created. Copy it now: it is shown only once.")
            return redirect("corporates:api_keys")
    return _api_keys_page(request, form, status=400)


@require_POST
@portal_member(roles=MANAGE_ROLES)
def api_key_revoke(request: HttpRequest, public_id: str) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, public_id=public_id, enterprise=request.membership.enterprise)
    try:
        api_key_services.api_key_revoke(api_key=api_key, revoked_by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"API key “{api_key.name}” is revoked; requests with it now fail.")
    return redirect("corporates:api_keys")


# --- webhooks --------------------------------------------------------------------


def _webhooks_page(request: HttpRequest, form: WebhookEndpointForm, status: int = 200) -> HttpResponse:
    enterprise = request.membership.enterprise
    events = (
        WebhookEvent.objects.filter(enterprise=enterprise)
        .prefetch_related("deliveries__endpoint")
        .order_by("-created_at")[:RECENT_EVENTS]
    )
    context = {
        "enterprise": enterprise,
        "form": form,
        "endpoints": WebhookEndpoint.objects.filter(enterprise=enterprise, deleted_at__isnull=True),
        "events": events,
        "secret": _secret_once(request, "webhook"),
    }
    return render(request, "portal/webhooks.html", context, status=status)


@portal_member(roles=MANAGE_ROLES)
def webhooks(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _webhooks_page(request, WebhookEndpointForm())
    form = WebhookEndpointForm(request.POST)
    if form.is_valid():
        try:
            endpoint = webhook_services.webhook_endpoint_create(
                enterprise=request.membership.enterprise,
                url=form.cleaned_data["url"],
                event_types=form.cleaned_data["event_types"],
                description=form.cleaned_data["description"],
                created_by=request.user,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            request.session[ONCE_SESSION_KEY] = {"kind": "webhook", "secret": endpoint.secret}
            messages.success(request, f"Endpoint {endpoint.url} registered. Copy its signing secret now.")
            return redirect("corporates:webhooks")
    return _webhooks_page(request, form, status=400)


@require_POST
@portal_member(roles=MANAGE_ROLES)
def webhook_endpoint_delete(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = get_object_or_404(
        WebhookEndpoint, public_id=public_id, enterprise=request.membership.enterprise, deleted_at__isnull=True
    )
    webhook_services.webhook_endpoint_delete(endpoint=endpoint, deleted_by=request.user)
    messages.success(request, f"Endpoint {endpoint.url} deleted; its pending deliveries are cancelled.")
    return redirect("corporates:webhooks")


@require_POST
@portal_member(roles=MANAGE_ROLES)
def webhook_endpoint_roll_secret(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = get_object_or_404(
        WebhookEndpoint, public_id=public_id, enterprise=request.membership.enterprise, deleted_at__isnull=True
    )
    try:
        endpoint = webhook_services.webhook_endpoint_secret_roll(endpoint=endpoint, rolled_by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        request.session[ONCE_SESSION_KEY] = {"kind": "webhook", "secret": endpoint.secret}
        messages.success(
            request,
            f"New signing secret for {endpoint.url}. Copy it now; the previous one keeps signing beside it until "
            f"{timezone.localtime(endpoint.previous_secret_expires_at):%d %b %Y, %H:%M}.",
        )
    return redirect("corporates:webhooks")


@require_POST
@portal_member(roles=MANAGE_ROLES)
def webhook_event_resend(request: HttpRequest, public_id: str) -> HttpResponse:
    event = get_object_or_404(WebhookEvent, public_id=public_id, enterprise=request.membership.enterprise)
    deliveries = webhook_services.webhook_event_resend(event=event)
    if deliveries:
        messages.success(request, f"Event {event.public_id} queued again to {len(deliveries)} endpoint(s).")
    else:
        messages.warning(request, "No active endpoint subscribes to this event's type.")
    return redirect("corporates:webhooks")

"""Back office views of API access and webhooks: keys (revoke), endpoints, events, deliveries (re-send).

Read-only apart from the actions, which go through the same services as the
portal and the API. Secrets never appear: a key's hash and an endpoint's
signing secret are not shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from corporates.api_keys import api_key_revoke
from corporates.models import ApiKey, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from corporates.webhooks import webhook_event_resend


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ("prefix", "name", "enterprise", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "public_id", "name", "enterprise__legal_name")
    list_select_related = ("enterprise",)
    fields = (
        "public_id", "enterprise", "name", "prefix", "scopes", "created_by", "created_at", "last_used_at",
        "revoked_at", "revoked_by",
    )  # fmt: skip
    readonly_fields = fields
    actions = ("revoke",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("corporates.change_apikey")  # the revoke action

    @admin.action(description="Revoke selected API keys (at once)", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for api_key in queryset.filter(revoked_at__isnull=True).order_by("pk"):
            # The back office acts for the enterprise (e.g. a leaked key): no member check.
            api_key_revoke(api_key=api_key, revoked_by=None)
            count += 1
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "enterprise", "url", "event_types", "created_at", "deleted_at")
    list_filter = ("deleted_at",)
    search_fields = ("public_id", "url", "enterprise__legal_name")
    list_select_related = ("enterprise",)
    fields = ("public_id", "enterprise", "url", "description", "event_types", "created_by", "created_at", "deleted_at")
    readonly_fields = fields


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "attempted_at", "status_code", "latency_ms", "error", "response_excerpt")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "public_id", "event", "endpoint", "status", "attempt_count", "last_status_code", "next_attempt_at",
        "delivered_at", "is_resend",
    )  # fmt: skip
    list_filter = ("status", "is_resend")
    search_fields = ("public_id", "event__public_id", "endpoint__url", "event__enterprise__legal_name")
    list_select_related = ("event", "endpoint")
    fields = (
        "public_id", "event", "endpoint", "status", "attempt_count", "last_status_code", "next_attempt_at",
        "delivered_at", "is_resend", "created_at",
    )  # fmt: skip
    readonly_fields = fields
    inlines = (WebhookAttemptInline,)
    actions = ("resend",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("corporates.change_webhookdelivery")  # the resend action

    @admin.action(description="Re-send the events of the selected deliveries", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet) -> None:
        created = 0
        for delivery in queryset.select_related("event", "endpoint").order_by("pk"):
            if delivery.endpoint.is_active:
                created += len(webhook_event_resend(event=delivery.event, endpoint=delivery.endpoint))
        self.message_user(request, f"Queued {created} new delivery(ies).", messages.SUCCESS)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "type", "enterprise", "created_at")
    list_filter = ("type",)
    search_fields = ("public_id", "type", "enterprise__legal_name")
    list_select_related = ("enterprise",)
    fields = ("public_id", "type", "enterprise", "data", "created_at")
    readonly_fields = fields

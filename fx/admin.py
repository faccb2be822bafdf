"""Back office: rate sources, manual rates, pricing tiers and terms, inventory floors and alerts.

Writes that have rules go through fx.services (setting or ending a manual
rate publishes at once; acknowledging alerts); quotes, swaps and ticks are
read-only records.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from config.errors import DomainError
from fx import selectors, services
from fx.models import (
    EnterpriseFxTerms,
    InventoryAlert,
    InventoryFloor,
    ManualRate,
    PricingTier,
    Quote,
    RateSource,
    RateTick,
    Swap,
)
from fx.rates import registered_keys


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RateSource)
class RateSourceAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "priority", "is_active", "updated_at"]
    list_editable = ["priority", "is_active"]
    readonly_fields = ["state", "updated_at"]
    actions = ["publish_now"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "key":
            # Only keys with a class in fx.rates: a row without one would be skipped at every publish.
            choices = [(key, key) for key in registered_keys()]
            return forms.ChoiceField(choices=choices, help_text="The class in fx.rates that implements the source.")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # ticks refer to their source; deactivate instead

    @admin.action(description="Publish rates now")
    def publish_now(self, request, queryset):
        ticks = services.rates_publish()
        self.message_user(request, f"Published {len(ticks)} rate(s).")


@admin.register(RateTick)
class RateTickAdmin(ReadOnlyAdmin):
    list_display = ["published_at", "currency", "mid", "source"]
    list_filter = ["currency", "source"]
    date_hierarchy = "published_at"
    list_select_related = ["source"]


@admin.register(ManualRate)
class ManualRateAdmin(admin.ModelAdmin):
    """Adding a manual rate makes it the active one for its currency and publishes it at once."""

    list_display = ["currency", "mid", "is_active", "note", "set_by", "updated_at"]
    list_filter = ["currency", "is_active"]
    fields = ["currency", "mid", "note"]
    actions = ["deactivate"]

    def has_change_permission(self, request, obj=None):
        return False  # a new rate is a new row: the history of manual rates stays intact

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)

        class ManualRateForm(form):
            def clean(self):
                cleaned = super().clean()
                if cleaned.get("currency") and cleaned.get("mid") is not None:
                    try:
                        services.manual_rate_validate(currency=cleaned["currency"], mid=cleaned["mid"])
                    except DomainError as exc:
                        raise ValidationError(exc.message, code=exc.code) from exc
                return cleaned

        return ManualRateForm

    def save_model(self, request, obj, form, change):
        saved = services.manual_rate_set(currency=obj.currency, mid=obj.mid, note=obj.note, set_by=request.user)
        obj.pk = saved.pk

    @admin.action(description="Deactivate (the feed takes over again)")
    def deactivate(self, request, queryset):
        for manual_rate in queryset.filter(is_active=True):
            services.manual_rate_deactivate(manual_rate=manual_rate)
        self.message_user(request, "Deactivated; rates published from the remaining sources.")


@admin.register(PricingTier)
class PricingTierAdmin(admin.ModelAdmin):
    list_display = ["name", "spread_bps"]


@admin.register(EnterpriseFxTerms)
class EnterpriseFxTermsAdmin(admin.ModelAdmin):
    list_display = ["enterprise", "tier", "single_swap_limit_usd"]
    list_select_related = ["enterprise", "tier"]
    autocomplete_fields = []
    raw_id_fields = ["enterprise"]


@admin.register(InventoryFloor)
class InventoryFloorAdmin(admin.ModelAdmin):
    """The platform's FX inventory per currency: balance, floor, open alerts."""

    list_display = ["currency", "floor", "inventory_balance", "open_alerts"]

    def _line(self, obj):
        # Read per row (three currencies): no state kept on the admin instance, which all requests share.
        return selectors.inventory_line(currency=obj.currency)

    @admin.display(description="Inventory now")
    def inventory_balance(self, obj):
        line = self._line(obj)
        return f"{line.balance} {obj.currency}{'  (below floor)' if line.below_floor else ''}"

    @admin.display(description="Open alerts")
    def open_alerts(self, obj):
        return self._line(obj).open_alerts


@admin.register(InventoryAlert)
class InventoryAlertAdmin(ReadOnlyAdmin):
    list_display = [
        "raised_at",
        "currency",
        "kind",
        "balance",
        "floor",
        "occurrences",
        "last_seen_at",
        "acknowledged_at",
    ]
    list_filter = ["currency", "kind", ("acknowledged_at", admin.EmptyFieldListFilter)]
    actions = ["acknowledge"]

    def has_change_permission(self, request, obj=None):
        return request.user.is_staff  # for the action; the form itself has only read-only fields

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    @admin.action(description="Acknowledge")
    def acknowledge(self, request, queryset):
        for alert in queryset:
            services.inventory_alert_acknowledge(alert=alert, user=request.user)
        self.message_user(request, "Acknowledged.")


@admin.register(Quote)
class QuoteAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "enterprise",
        "sell_amount",
        "sell_currency",
        "buy_amount",
        "buy_currency",
        "client_rate",
        "status",
        "created_at",
        "expires_at",
    ]
    list_filter = ["status", "sell_currency", "buy_currency"]
    search_fields = ["public_id", "enterprise__legal_name"]
    list_select_related = ["enterprise"]


@admin.register(Swap)
class SwapAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "enterprise",
        "sell_amount",
        "sell_currency",
        "buy_amount",
        "buy_currency",
        "client_rate",
        "accepted_at",
    ]
    list_filter = ["sell_currency", "buy_currency"]
    search_fields = ["public_id", "quote__public_id", "enterprise__legal_name"]
    list_select_related = ["enterprise"]

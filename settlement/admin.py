"""Back office for mint and redeem: the suspense queue, redemptions at risk or late, reserve alerts.

Every write goes through a service (assigning a suspended wire mints it
through the ledger; nothing here edits a balance or an entry). Wires,
references and redemptions are read-only records.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from config.errors import DomainError
from corporates.models import Enterprise, EnterpriseStatus
from settlement.deposits.models import DepositReference, InboundWire, ReserveAlert, SuspenseItem, SuspenseStatus
from settlement.deposits.services import suspense_assign, suspense_mark_returned
from settlement.ledger.models import JournalBlock
from settlement.redemptions import selectors as redemption_selectors
from settlement.redemptions.models import PayoutDestination, Redemption
from settlement.reserves import reserve_alert_resolve


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DepositReference)
class DepositReferenceAdmin(ReadOnlyAdmin):
    list_display = ["reference", "currency", "enterprise", "created_at"]
    list_filter = ["currency"]
    search_fields = ["reference", "enterprise__legal_name", "enterprise__public_id"]
    list_select_related = ["enterprise"]


@admin.register(InboundWire)
class InboundWireAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "received_at", "amount_display", "currency", "reference", "enterprise", "status"]
    list_filter = ["status", "currency"]
    search_fields = ["public_id", "reference", "bank_wire_id", "bank_event_id", "sender_name"]
    date_hierarchy = "received_at"
    list_select_related = ["enterprise"]


class AssignForm(forms.Form):
    enterprise = forms.ModelChoiceField(
        queryset=Enterprise.objects.filter(status=EnterpriseStatus.APPROVED).order_by("legal_name"),
        help_text="The wire is minted 1:1 into this enterprise's wallet.",
    )
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="How the owner was established.")


class ReturnForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="The bank's reference of the return to the sender."
    )


@admin.register(SuspenseItem)
class SuspenseItemAdmin(ReadOnlyAdmin):
    list_display = ["wire", "created_at", "reason", "detail", "status", "resolved_by", "resolved_at"]
    list_filter = ["status", "reason"]
    search_fields = ["wire__public_id", "wire__reference", "wire__sender_name"]
    list_select_related = ["wire", "resolved_by"]
    actions = ["assign_and_mint", "mark_returned"]

    def get_queryset(self, request):
        # Open items first: they are the queue.
        return super().get_queryset(request).order_by("-status", "created_at")

    def _one_open(self, request, queryset) -> SuspenseItem | None:
        items = list(queryset.filter(status=SuspenseStatus.OPEN)[:2])
        if len(items) != 1:
            self.message_user(request, "Select exactly one open item.", messages.ERROR)
            return None
        return items[0]

    def _form_page(self, request, queryset, form, title: str, action: str) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "items": queryset,
            "action": action,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "settlement/admin/suspense_action.html", context)

    @admin.action(description="Assign to an enterprise and mint")
    def assign_and_mint(self, request, queryset):
        item = self._one_open(request, queryset)
        if item is None:
            return None
        form = AssignForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            try:
                suspense_assign(
                    item=item,
                    enterprise=form.cleaned_data["enterprise"],
                    actor=request.user,
                    note=form.cleaned_data["note"],
                )
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return None
            self.message_user(request, f"{item.wire.public_id} minted to {form.cleaned_data['enterprise']}.")
            return None
        return self._form_page(request, queryset, form, "Assign a held wire and mint it", "assign_and_mint")

    @admin.action(description="Mark returned to the sender")
    def mark_returned(self, request, queryset):
        item = self._one_open(request, queryset)
        if item is None:
            return None
        form = ReturnForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            try:
                suspense_mark_returned(item=item, actor=request.user, note=form.cleaned_data["note"])
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return None
            self.message_user(request, f"{item.wire.public_id} recorded as returned.")
            return None
        return self._form_page(request, queryset, form, "Record a held wire as returned", "mark_returned")


class DeadlineFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return [("late", "Late"), ("at_risk", "At risk")]

    def queryset(self, request, queryset):
        if self.value() == "late":
            return queryset.filter(pk__in=redemption_selectors.redemptions_late().values("pk"))
        if self.value() == "at_risk":
            return queryset.filter(pk__in=redemption_selectors.redemptions_at_risk().values("pk"))
        return queryset


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "enterprise",
        "amount_decimal",
        "currency",
        "state",
        "approved_at",
        "deadline_at",
        "deadline",
        "payout_id",
        "failure_code",
        "returned_at",
    ]
    list_filter = [DeadlineFilter, "state", "currency"]
    search_fields = ["public_id", "payout_id", "enterprise__legal_name", "enterprise__public_id"]
    date_hierarchy = "requested_at"
    list_select_related = ["enterprise"]

    @admin.display(description="deadline status")
    def deadline(self, obj: Redemption) -> str:
        return redemption_selectors.deadline_status(obj)


@admin.register(PayoutDestination)
class PayoutDestinationAdmin(ReadOnlyAdmin):
    list_display = ["bank_account", "external_account_id", "created_at"]
    search_fields = ["external_account_id", "bank_account__public_id"]


@admin.register(ReserveAlert)
class ReserveAlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "currency", "difference", "message", "status", "resolved_by"]
    list_filter = ["status", "kind", "currency"]
    actions = ["resolve"]

    @admin.action(description="Mark resolved (the cause is settled)")
    def resolve(self, request, queryset):
        for alert in queryset:
            reserve_alert_resolve(alert=alert, actor=request.user)
        self.message_user(request, f"{queryset.count()} alert(s) resolved.")


@admin.register(JournalBlock)
class JournalBlockAdmin(ReadOnlyAdmin):
    """The sealed journal (DESIGN.md invariant 4); `verify_ledger` recomputes every block."""

    list_display = ["number", "first_entry_id", "last_entry_id", "entry_count", "hash", "sealed_at"]
    date_hierarchy = "sealed_at"
    search_fields = ["hash"]


# Netting batches and obligations (issue 6) register themselves in their own module.
from settlement.netting import admin as _netting_admin  # noqa: E402, F401

"""Back office for netting: batches (report, phases, resume; a button runs a cut-off now) and obligations, read-only.

Nothing here changes a batch or an obligation itself: the actions queue the
same Celery tasks as the schedules, which call the netting services.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from settlement.netting.models import NettingBatch
from settlement.netting.tasks import netting_batch_run_task, netting_cutoff_task
from settlement.obligations.models import Obligation


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(NettingBatch)
class NettingBatchAdmin(_ReadOnly):
    list_display = [
        "public_id",
        "status",
        "trigger",
        "cutoff_at",
        "passes",
        "claimed",
        "net_transfers",
        "efficiency",
        "seconds",
        "attempts",
    ]
    list_filter = ["status", "trigger"]
    search_fields = ["public_id"]
    readonly_fields = [
        "public_id",
        "status",
        "trigger",
        "cutoff_at",
        "value_date",
        "cut_id",
        "cut_exclusions",
        "created_at",
        "netting_at",
        "settling_at",
        "completed_at",
        "events_emitted_at",
        "attempts",
        "passes",
        "multilateral_currencies",
        "phase_seconds",
        "report",
    ]
    actions = ["resume"]
    # The changelist carries a "Run a cut-off now" button: an admin action
    # needs a selected row, and a fresh install has no batch to select.
    change_list_template = "settlement/admin/nettingbatch_change_list.html"

    def get_urls(self):
        # admin_view: signed-in, active, staff and two-factor verified (the site's has_permission).
        run_cutoff = self.admin_site.admin_view(require_POST(self.run_cutoff_view))
        return [path("run-cutoff/", run_cutoff, name="settlement_nettingbatch_run_cutoff"), *super().get_urls()]

    def has_run_cutoff_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("settlement.run_cutoff")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_run_cutoff": self.has_run_cutoff_permission(request)}
        return super().changelist_view(request, extra_context=extra_context)

    def run_cutoff_view(self, request: HttpRequest):
        if not self.has_run_cutoff_permission(request):
            raise PermissionDenied
        # The same task as the schedules (a batch may take minutes: never inside the request).
        netting_cutoff_task.delay(trigger=f"manual: {request.user.get_username()}"[:100])
        self.message_user(request, "A cut-off is queued; its batch appears here when it opens.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:settlement_nettingbatch_changelist"))

    @admin.display(description="obligations")
    def claimed(self, batch: NettingBatch):
        return batch.report.get("obligations", {}).get("claimed")

    @admin.display(description="net transfers")
    def net_transfers(self, batch: NettingBatch):
        return batch.report.get("net_transfers")

    @admin.display(description="efficiency % (bilateral / multilateral)")
    def efficiency(self, batch: NettingBatch):
        if not batch.report:
            return None
        return f"{batch.report['efficiency_bilateral_pct']} / {batch.report['efficiency_multilateral_pct']}"

    @admin.display(description="seconds")
    def seconds(self, batch: NettingBatch):
        return batch.phase_seconds.get("total")

    @admin.action(description="Resume the selected batches (safe on a completed or running batch)")
    def resume(self, request, queryset):
        for batch_id in queryset.values_list("id", flat=True):
            netting_batch_run_task.delay(batch_id=batch_id)
        self.message_user(request, f"Queued {queryset.count()} batch(es).", messages.SUCCESS)


@admin.register(Obligation)
class ObligationAdmin(_ReadOnly):
    list_display = ["public_id", "payer", "payee", "amount_display", "value_date", "status", "roll_count", "batch"]
    list_filter = ["status", "currency", "needs_approval"]
    search_fields = ["public_id", "external_reference", "payer__public_id", "payee__public_id"]
    list_select_related = ["payer", "payee", "batch"]
    show_full_result_count = False  # a million rows: no COUNT(*) on every page
    readonly_fields = [f.name for f in Obligation._meta.fields]

    @admin.display(description="amount")
    def amount_display(self, obligation: Obligation) -> str:
        return f"{obligation.amount_decimal} {obligation.currency}"

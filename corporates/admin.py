"""The back office (Django admin) of corporates: KYB review queue, sanctions alerts, bank accounts.

Admin moves no state by itself: every action makes one service call per
selected object (the same services the portal and the API use) and reports
the service's refusals. Decisions that need a reason ask for it on an
intermediate page; the reason is recorded and shown to the enterprise.
Everything else here is read-only, except per-enterprise limits, which are
saved through ``enterprise_limits_set``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from config.errors import DomainError
from corporates.admin_site import BackOfficeAdminSite
from corporates.models import (
    AlertStatus,
    BankAccount,
    BankAccountStatus,
    BeneficialOwner,
    Enterprise,
    EnterpriseLimit,
    EnterpriseStatus,
    EnterpriseStatusChange,
    ExpectedVolume,
    KybDocument,
    KybProfile,
    Membership,
    SanctionsAlert,
    SanctionsEntry,
    SanctionsListLoad,
)
from corporates.onboarding.banking import bank_account_disable, bank_account_verify
from corporates.onboarding.limits import enterprise_limits_set
from corporates.onboarding.status import (
    enterprise_approve,
    enterprise_freeze,
    enterprise_reject,
    enterprise_review_start,
    enterprise_unfreeze,
)
from corporates.sanctions import sanctions_alert_clear, sanctions_alert_confirm

# Staff pass TOTP before any admin page (corporates/admin_site.py). The default
# site's class is swapped in place, as django-otp's documentation does, so the
# ModelAdmins every app registers on admin.site stay registered behind it.
admin.site.__class__ = BackOfficeAdminSite


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="Recorded with your name in the audit trail, and shown to the enterprise on its status page.",
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required.")
        return reason


def _report(modeladmin: admin.ModelAdmin, request: HttpRequest, done: int, failures: list[str], verb: str) -> None:
    if done:
        modeladmin.message_user(request, f"{verb}: {done}.", messages.SUCCESS)
    for failure in failures:
        modeladmin.message_user(request, failure, messages.ERROR)


def reason_action(
    name: str, description: str, service: Callable[..., Any], verb: str, *, target: str
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet], TemplateResponse | None]:
    """An admin action that asks for a mandatory reason, then calls ``service(<target>=obj, …)`` once per object."""

    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        form = ReasonForm(request.POST if "apply_reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            done, failures = 0, []
            for obj in queryset.order_by("pk"):
                try:
                    service(**{target: obj}, reason=form.cleaned_data["reason"], actor=request.user)
                    done += 1
                except DomainError as exc:
                    failures.append(f"{obj}: {exc.message} ({exc.code})")
            _report(modeladmin, request, done, failures, verb)
            return None
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": description,
            "description": description,
            "objects": queryset,
            "form": form,
            "action": name,
            "opts": modeladmin.model._meta,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "corporates/admin_reason.html", context)

    action.__name__ = name
    return admin.action(description=description, permissions=["change"])(action)


def queue_changelist(*first: str) -> type[ChangeList]:
    """A change list that puts ``first`` (annotations of get_queryset) ahead of its ordering.

    ModelAdmin.get_ordering would also order every foreign-key dropdown that
    points at the model, where the annotations do not exist; a change-list
    subclass touches only the list. A column the user sorts by wins.
    """

    class QueueChangeList(ChangeList):
        def get_ordering(self, request: HttpRequest, queryset: QuerySet) -> list:
            ordering = super().get_ordering(request, queryset)
            return ordering if ORDER_VAR in self.params else [*first, *ordering]

    return QueueChangeList


# --- enterprises: the review queue ---------------------------------------------------


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class KybProfileInline(_ReadOnlyInline):
    model = KybProfile
    template = "admin/edit_inline/stacked.html"  # an address reads better stacked
    fields = readonly_fields = ("lei", "registered_address", "contact_name", "contact_email", "contact_phone")


class ExpectedVolumeInline(_ReadOnlyInline):
    model = ExpectedVolume
    fields = readonly_fields = ("monthly_volume",)


class BeneficialOwnerInline(_ReadOnlyInline):
    model = BeneficialOwner
    fields = readonly_fields = ("full_name", "nationality", "ownership_percent", "public_id")


class KybDocumentInline(_ReadOnlyInline):
    model = KybDocument
    fields = readonly_fields = ("kind", "open_document", "content_type", "size_bytes", "sha256", "uploaded_at")

    @admin.display(description="Document")
    def open_document(self, document: KybDocument) -> str:
        # Through the authorising view: documents have no public URL.
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>',
            reverse("corporates:kyb_document", args=[document.public_id]),
            document.original_name,
        )


class SanctionsAlertInline(_ReadOnlyInline):
    model = SanctionsAlert
    fields = readonly_fields = ("alert_link", "status", "party_kind", "screened_name", "entry_name", "score")

    @admin.display(description="Alert")
    def alert_link(self, alert: SanctionsAlert) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:corporates_sanctionsalert_change", args=[alert.pk]), alert.public_id
        )


class BankAccountInline(_ReadOnlyInline):
    model = BankAccount
    fields = readonly_fields = ("public_id", "holder_name", "bank_name", "account_number", "currency", "status")


class MembershipInline(_ReadOnlyInline):
    model = Membership
    verbose_name_plural = "Members"
    fields = readonly_fields = ("user", "role", "created_at")


class StatusChangeInline(_ReadOnlyInline):
    model = EnterpriseStatusChange
    verbose_name_plural = "Audit trail"
    fields = readonly_fields = ("created_at", "from_status", "to_status", "actor_label", "reason")
    ordering = ("-created_at", "-id")


class EnterpriseLimitInline(admin.TabularInline):
    model = EnterpriseLimit
    extra = 0
    fields = ("currency", "single_payment", "daily_redemption", "approval_threshold")
    verbose_name_plural = "Limit overrides (empty field = default from settings)"


@admin.register(Enterprise)
class EnterpriseAdmin(admin.ModelAdmin):
    list_display = ("legal_name", "status_badge", "open_alerts", "jurisdiction", "created_at", "public_id")
    list_filter = ("status", "jurisdiction")
    search_fields = ("legal_name", "public_id", "registration_number", "kyb_profile__lei")
    readonly_fields = (
        "public_id",
        "legal_name",
        "registration_number",
        "jurisdiction",
        "status",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields
    inlines = (
        KybProfileInline,
        ExpectedVolumeInline,
        BeneficialOwnerInline,
        KybDocumentInline,
        SanctionsAlertInline,
        BankAccountInline,
        MembershipInline,
        EnterpriseLimitInline,
        StatusChangeInline,
    )
    actions = (
        reason_action(
            "start_review",
            "Start review of selected enterprises",
            enterprise_review_start,
            "Under review",
            target="enterprise",
        ),
        reason_action("approve", "Approve selected enterprises", enterprise_approve, "Approved", target="enterprise"),
        reason_action("reject", "Reject selected enterprises", enterprise_reject, "Rejected", target="enterprise"),
        reason_action("freeze", "Freeze selected enterprises", enterprise_freeze, "Frozen", target="enterprise"),
        reason_action(
            "unfreeze", "Unfreeze selected enterprises", enterprise_unfreeze, "Unfrozen", target="enterprise"
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The review queue: under review first, then new applications, oldest first.
        rank = Case(
            When(status=EnterpriseStatus.UNDER_REVIEW, then=Value(0)),
            When(status=EnterpriseStatus.APPLIED, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
        # Annotate before ordering (ModelAdmin.get_queryset orders by get_ordering at once).
        return Enterprise.objects.annotate(
            queue_rank=rank,
            open_alert_count=Count("sanctions_alerts", filter=Q(sanctions_alerts__status=AlertStatus.OPEN)),
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        # The review queue: under review first, then new applications, oldest first.
        return queue_changelist("queue_rank", "created_at")

    @admin.display(description="Status", ordering="queue_rank")
    def status_badge(self, enterprise: Enterprise) -> str:
        return enterprise.get_status_display()

    @admin.display(description="Open alerts", ordering="open_alert_count")
    def open_alerts(self, enterprise: Enterprise) -> int:
        return enterprise.open_alert_count

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # enterprises come in through the application

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the audit trail keeps them

    def save_model(self, request: HttpRequest, obj: Enterprise, form: Any, change: bool) -> None:
        pass  # every field is read-only; status changes only through the actions

    def construct_change_message(self, request: HttpRequest, form: Any, formsets: Any, add: bool) -> list:
        # Django's version reads what formset.save() would have set; we never call it.
        changed = [fs for fs in formsets if fs.model is EnterpriseLimit and fs.has_changed()]
        return [{"changed": {"fields": ["limits"]}}] if changed else []

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not EnterpriseLimit:
            return
        enterprise = form.instance
        for limit_form in formset.forms:
            if not limit_form.has_changed() and not formset._should_delete_form(limit_form):
                continue
            data = limit_form.cleaned_data
            if not data:
                continue
            reset = formset._should_delete_form(limit_form)
            enterprise_limits_set(
                enterprise=enterprise,
                currency=data["currency"],
                single_payment=None if reset else data.get("single_payment"),
                daily_redemption=None if reset else data.get("daily_redemption"),
                approval_threshold=None if reset else data.get("approval_threshold"),
                actor=request.user,
            )


@admin.register(EnterpriseStatusChange)
class EnterpriseStatusChangeAdmin(admin.ModelAdmin):
    list_display = ("created_at", "enterprise", "from_status", "to_status", "actor_label", "reason")
    fields = readonly_fields = (
        "created_at",
        "enterprise",
        "from_status",
        "to_status",
        "actor",
        "actor_label",
        "reason",
    )
    list_filter = ("to_status",)
    search_fields = ("enterprise__legal_name", "enterprise__public_id", "actor_label", "reason")
    list_select_related = ("enterprise",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- sanctions ------------------------------------------------------------------------


@admin.register(SanctionsAlert)
class SanctionsAlertAdmin(admin.ModelAdmin):
    list_display = (
        "public_id", "status", "enterprise", "party_kind", "screened_name", "entry_name", "entry_list_source", "score",
        "created_at",
    )  # fmt: skip
    list_filter = ("status", "party_kind", "entry_list_source")
    search_fields = ("public_id", "screened_name", "entry_name", "enterprise__legal_name")
    list_select_related = ("enterprise",)
    readonly_fields = (
        "public_id", "enterprise", "party_kind", "party_ref", "screened_name", "entry_name", "entry_country",
        "entry_list_source", "matched_name", "score", "status", "created_at", "resolved_at", "resolved_by",
        "resolution_reason",
    )  # fmt: skip
    fields = readonly_fields
    actions = (
        reason_action(
            "clear", "Clear selected alerts as false positives", sanctions_alert_clear, "Cleared", target="alert"
        ),
        reason_action(
            "confirm",
            "Confirm selected alerts (freezes the enterprise)",
            sanctions_alert_confirm,
            "Confirmed",
            target="alert",
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        open_first = Case(When(status=AlertStatus.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField())
        return super().get_queryset(request).annotate(open_first=open_first)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return queue_changelist("open_first", "-score")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: SanctionsAlert, form: Any, change: bool) -> None:
        pass  # decisions only through the actions


@admin.register(SanctionsListLoad)
class SanctionsListLoadAdmin(admin.ModelAdmin):
    list_display = ("loaded_at", "source", "entry_count", "sha256")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # manage.py load_sanctions

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SanctionsEntry)
class SanctionsEntryAdmin(SanctionsListLoadAdmin):
    list_display = ("name", "aliases", "country", "list_source")
    list_filter = ("list_source",)
    search_fields = ("name", "aliases")


# --- bank accounts ----------------------------------------------------------------------


@admin.register(BankAccount)
class BankAccountAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "enterprise",
        "holder_name",
        "bank_name",
        "account_number",
        "currency",
        "status",
        "created_at",
    )
    list_filter = ("status", "currency")
    search_fields = ("public_id", "holder_name", "bank_name", "account_number", "enterprise__legal_name")
    list_select_related = ("enterprise",)
    readonly_fields = (
        "public_id", "enterprise", "holder_name", "bank_name", "account_number", "is_iban", "currency", "status",
        "created_at", "verified_at", "verified_by", "disabled_at", "disabled_reason",
    )  # fmt: skip
    fields = readonly_fields
    actions = (
        "verify",
        reason_action(
            "disable", "Disable selected bank accounts", bank_account_disable, "Disabled", target="bank_account"
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        pending_first = Case(
            When(status=BankAccountStatus.PENDING, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        return super().get_queryset(request).annotate(pending_first=pending_first)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return queue_changelist("pending_first")

    @admin.action(description="Verify selected bank accounts", permissions=["change"])
    def verify(self, request: HttpRequest, queryset: QuerySet) -> None:
        done, failures = 0, []
        for account in queryset.order_by("pk"):
            try:
                bank_account_verify(bank_account=account, actor=request.user)
                done += 1
            except DomainError as exc:
                failures.append(f"{account}: {exc.message} ({exc.code})")
        _report(self, request, done, failures, "Verified")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # enterprises register their accounts (portal, API)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: BankAccount, form: Any, change: bool) -> None:
        pass


# API keys and webhooks (corporates/admin_access.py, owned by the API foundations).
from corporates import admin_access  # noqa: E402, F401

"""Portal pages of KYB: the application form, the status page, the authorising document view.

Thin: the form gives the service its input, the service decides, its errors
land on the form's fields. Documents are never a public URL: this view streams
them only to the back office or to members of the enterprise they belong to.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from config import money
from config.errors import DomainError
from corporates.forms_onboarding import ApplicationForm, DocumentUploadForm, OwnerFormSet, volume_field_name
from corporates.models import DocumentKind, EnterpriseStatus, KybDocument
from corporates.onboarding.applications import (
    Application,
    ApplicationInvalid,
    OwnerInput,
    enterprise_apply,
    kyb_document_add,
)
from corporates.onboarding.limits import limits_all_for
from corporates.permissions import (
    ALL_ROLES,
    MANAGE_ROLES,
    NotAMember,
    membership_of,
    portal_member,
    two_factor_pending,
)

logger = logging.getLogger(__name__)
OPEN_STATUSES = (EnterpriseStatus.APPLIED, EnterpriseStatus.UNDER_REVIEW)


def _form_field_for(error_field: str, form: ApplicationForm, owners: OwnerFormSet) -> tuple[object, str | None]:
    """Where a service error's ``field`` belongs on the page."""
    if error_field.startswith("beneficial_owners."):
        _, index, name = error_field.split(".")
        return owners.forms[int(index)], name
    if error_field.startswith("expected_volumes."):
        return form, volume_field_name(error_field.split(".")[1])
    if error_field in form.fields:
        return form, error_field
    return form, None


def application_apply(request: HttpRequest) -> HttpResponse:
    """Anyone may apply; the applicant's login is created with the application."""
    if request.user.is_authenticated and hasattr(request.user, "membership"):
        return redirect("corporates:application_status")
    form = ApplicationForm(request.POST or None, request.FILES or None)
    owners = OwnerFormSet(request.POST or None, prefix="owners")
    if request.method == "POST" and form.is_valid() and owners.is_valid():
        data = form.cleaned_data
        application = Application(
            legal_name=data["legal_name"],
            registration_number=data["registration_number"],
            jurisdiction=data["jurisdiction"],
            registered_address=data["registered_address"],
            lei=data["lei"],
            contact_name=data["contact_name"],
            contact_email=data["contact_email"],
            contact_phone=data["contact_phone"],
            applicant_email=data["applicant_email"],
            applicant_password=data["applicant_password"],
            expected_volumes={code: data[volume_field_name(code)] for code in money.CURRENCY_CODES},
            beneficial_owners=[
                OwnerInput(
                    full_name=owner.cleaned_data["full_name"],
                    nationality=owner.cleaned_data["nationality"],
                    ownership_percent=owner.cleaned_data["ownership_percent"],
                )
                for owner in owners.forms
                if not owner.is_blank()
            ],
            documents={kind: data[kind] for kind in DocumentKind.values},
        )
        try:
            result = enterprise_apply(application=application)
        except ApplicationInvalid as exc:
            target, name = _form_field_for(exc.field, form, owners)
            target.add_error(name, exc.message)
        else:
            # No session is opened here: the applicant signs in through the
            # normal sign-in (throttled, two-factor set-up for an admin).
            messages.success(
                request,
                f"Application for {result.enterprise.legal_name} received (reference {result.enterprise.public_id}). "
                "Sign in to follow its review.",
            )
            return redirect("corporates:login")
    return render(request, "corporates/apply.html", {"form": form, "owners": owners})


@portal_member(roles=ALL_ROLES, write_roles=MANAGE_ROLES)
def application_status(request: HttpRequest) -> HttpResponse:
    """The status page; an enterprise admin also adds documents here while the application is open."""
    enterprise = request.membership.enterprise
    is_admin = request.membership.role in MANAGE_ROLES
    upload_form = DocumentUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if upload_form.is_valid():
            try:
                document = kyb_document_add(
                    enterprise=enterprise,
                    kind=upload_form.cleaned_data["kind"],
                    upload=upload_form.cleaned_data["file"],
                    actor=request.user,
                )
            except ApplicationInvalid as exc:
                upload_form.add_error(exc.field if exc.field in upload_form.fields else None, exc.message)
            except DomainError as exc:
                upload_form.add_error(None, exc.message)
            else:
                messages.success(request, f"{document.get_kind_display()} added.")
                return redirect("corporates:application_status")
    context = {
        "upload_form": upload_form if is_admin and (enterprise.status in OPEN_STATUSES or upload_form.errors) else None,
        "enterprise": enterprise,
        "profile": getattr(enterprise, "kyb_profile", None),
        "changes": enterprise.status_changes.order_by("-created_at", "-id"),
        "owners": enterprise.beneficial_owners.all(),
        "documents": enterprise.kyb_documents.all(),
        "volumes": enterprise.expected_volumes.all(),
        "limits": limits_all_for(enterprise=enterprise).values(),
        "bank_accounts": enterprise.bank_accounts.all(),
    }
    return render(request, "corporates/application_status.html", context)


def _may_read(request: HttpRequest, document: KybDocument) -> bool:
    user = request.user
    if user.is_active and user.is_staff and user.has_perm("corporates.view_kybdocument"):
        # The back office's door: staff read documents only past two-factor, as in admin.
        return user.is_verified()
    try:
        membership = membership_of(user)
    except NotAMember:
        return False
    return membership.enterprise_id == document.enterprise_id and two_factor_pending(request, membership) is None


def kyb_document_download(request: HttpRequest, public_id: str) -> HttpResponse:
    """Stream a KYB document to the back office or to a member of its enterprise; 404 for anyone else."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    document = get_object_or_404(KybDocument, public_id=public_id)
    if not _may_read(request, document):
        # Another tenant's document does not exist as far as this user knows.
        raise Http404("No such document.")
    try:
        handle = document.file.open("rb")
    except FileNotFoundError:
        logger.error("KYB document %s is missing from storage (%s)", document.public_id, document.file.name)
        raise Http404("No such document.") from None
    response = FileResponse(handle, content_type=document.content_type, filename=document.original_name)
    response["Cache-Control"] = "private, no-store"
    # Even a crafted PDF cannot run script in our origin.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    return response

"""Portal pages of netting: the next cut-off's preview, obligations (CSV upload, cancel), the enterprise's batches.

Views are thin: each parses its input, makes one service (or selector) call
and renders the result or the service's error.
"""

from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from config.errors import DomainError
from corporates.permissions import APPROVE_ROLES, INITIATE_ROLES, portal_member
from settlement.netting.cut import with_running_batches
from settlement.netting.selectors import batches_for, obligations_in_batch, obligations_in_batch_csv, positions_for
from settlement.netting.services import netting_preview
from settlement.obligations.models import Obligation
from settlement.obligations.services import (
    ObligationsInvalid,
    obligation_approve,
    obligation_cancel,
    obligations_create_bulk,
)

PAY_ROLES = INITIATE_ROLES
UPLOAD_COLUMNS = ["payee", "amount", "currency", "value_date", "external_reference", "memo"]
UPLOAD_MAX_BYTES = 5 * 1024 * 1024


def _rows_from_upload(upload) -> list[dict[str, str]]:
    """The CSV's rows as the bulk service reads them; refuses what is not a CSV with the template's header."""
    if upload is None:
        raise ValueError("Choose a CSV file.")
    if upload.size > UPLOAD_MAX_BYTES:
        raise ValueError("The file is larger than 5 MB.")
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("The file is not UTF-8 text.") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or set(UPLOAD_COLUMNS[:5]) - {name.strip() for name in reader.fieldnames}:
        raise ValueError(f"The first line must name the columns: {', '.join(UPLOAD_COLUMNS)}.")
    return [{(k or "").strip(): (v or "") for k, v in row.items()} for row in reader]


@portal_member(write_roles=PAY_ROLES)
def netting_home(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    enterprise = membership.enterprise
    row_errors = []
    if request.method == "POST":
        try:
            rows = _rows_from_upload(request.FILES.get("file"))
            result = obligations_create_bulk(payer=enterprise, rows=rows, created_by=request.user)
        except ValueError as exc:
            messages.error(request, str(exc))
        except ObligationsInvalid as exc:
            # Line numbers as the finance team sees them in a spreadsheet: the header is line 1.
            row_errors = [
                {"line": e.row + 2, "field": e.field, "code": e.code, "message": e.message} for e in exc.errors
            ]
            messages.error(request, f"Nothing was created: {len(row_errors)} error(s) below.")
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{result.created} obligation(s) created.")
            return redirect("settlement:netting")
    preview = netting_preview(enterprise=enterprise)
    batches = list(batches_for(enterprise=enterprise).order_by("-id")[:10])
    context = {
        "can_pay": membership.role in PAY_ROLES,
        "can_approve": membership.role in APPROVE_ROLES,
        "preview": preview,
        "row_errors": row_errors,
        "batches": [(batch, positions_for(enterprise=enterprise, batch=batch)) for batch in batches],
        "outgoing": with_running_batches(
            Obligation.objects.filter(payer=enterprise).select_related("payee").order_by("-id")[:50]
        ),
        "incoming": with_running_batches(
            Obligation.objects.filter(payee=enterprise).select_related("payer").order_by("-id")[:50]
        ),
    }
    return render(request, "settlement/netting.html", context)


@portal_member()
def obligations_template(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="obligations-template.csv"'
    writer = csv.writer(response)
    writer.writerow(UPLOAD_COLUMNS)
    writer.writerow(["ent_XXXXXXXXXXXXXXXXXXXX", "1250.00", "HKD", "2026-12-01", "INV-0001", "Freight, November"])
    return response


@require_POST
@portal_member(roles=PAY_ROLES)
def obligation_cancel_view(request: HttpRequest, public_id: str) -> HttpResponse:
    enterprise = request.membership.enterprise
    obligation = get_object_or_404(Obligation, public_id=public_id, payer=enterprise)
    try:
        obligation_cancel(obligation=obligation, payer=enterprise)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Obligation {obligation.public_id} cancelled.")
    return redirect("settlement:netting")


@require_POST
@portal_member(roles=APPROVE_ROLES)
def obligation_approve_view(request: HttpRequest, public_id: str) -> HttpResponse:
    """A checker (or admin) approves an obligation above the threshold; never the member who made it."""
    obligation = get_object_or_404(Obligation, public_id=public_id, payer=request.membership.enterprise)
    try:
        obligation_approve(obligation=obligation, approver=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Obligation {obligation.public_id} approved: the next cut-off takes it.")
    return redirect("settlement:netting")


@portal_member()
def netting_batch(request: HttpRequest, public_id: str) -> HttpResponse:
    enterprise = request.membership.enterprise
    batch = get_object_or_404(batches_for(enterprise=enterprise), public_id=public_id)
    context = {
        "batch": batch,
        "positions": positions_for(enterprise=enterprise, batch=batch),
        "obligations": obligations_in_batch(enterprise=enterprise, batch=batch)[:500],
        "enterprise": enterprise,
    }
    return render(request, "settlement/netting_batch.html", context)


@portal_member()
def netting_batch_csv(request: HttpRequest, public_id: str) -> HttpResponse:
    enterprise = request.membership.enterprise
    batch = get_object_or_404(batches_for(enterprise=enterprise), public_id=public_id)
    response = StreamingHttpResponse(
        obligations_in_batch_csv(enterprise=enterprise, batch=batch), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{batch.public_id}.csv"'
    return response

"""Settlement's HTTP endpoints outside the ERP API: the bank's webhook, and the portal's pages.

Views are thin: each reads its input through a form, makes one service (or
selector) call and renders the result or the service's error.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.errors import DomainError
from corporates.models import MemberRole
from corporates.permissions import APPROVE_ROLES, INITIATE_ROLES, RoleNotPermitted, portal_member
from settlement.bank_events import bank_event_apply
from settlement.deposits.models import InboundWire, InboundWireStatus
from settlement.deposits.services import deposit_instructions_for
from settlement.forms import RedemptionForm
from settlement.redemptions.models import Redemption
from settlement.redemptions.selectors import redemptions_for
from settlement.redemptions.services import Actor, redemption_approve, redemption_cancel, redemption_request
from settlement.reserves import reserves_snapshot
from settlement.webhooks_in import WebhookSignatureError, bank_event_verify

logger = logging.getLogger(__name__)


@csrf_exempt  # the bank signs its deliveries; there is no session to forge
@require_POST
def bank_webhook(request: HttpRequest) -> JsonResponse:
    """POST /webhooks/bank/: verify Stripe-Signature and the replay window, apply, then acknowledge.

    The 2xx goes out only after the event's transaction has committed; any
    failure before that is a 5xx, and the bank delivers the event again.
    """
    secrets = [secret.strip() for secret in settings.BANK_RAILS_WEBHOOK_SECRET.split(",") if secret.strip()]
    try:
        event = bank_event_verify(
            payload=request.body,
            signature_header=request.headers.get("Stripe-Signature"),
            secrets=secrets,
            tolerance_s=settings.BANK_RAILS_WEBHOOK_TOLERANCE_S,
        )
    except WebhookSignatureError as exc:
        logger.warning("bank webhook refused: %s", exc)
        return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=400)
    outcome = bank_event_apply(event=event)
    return JsonResponse({"id": event.id, "outcome": outcome})


# --- portal: deposit instructions, redemptions, reserves ------------------------------------

REDEEM_ROLES = INITIATE_ROLES
CANCEL_ROLES = frozenset({MemberRole.MAKER, MemberRole.ADMIN})


@portal_member()
def deposits(request: HttpRequest) -> HttpResponse:
    enterprise = request.membership.enterprise
    context = {
        "instructions": deposit_instructions_for(enterprise=enterprise) if enterprise.can_move_money else [],
        "wires": InboundWire.objects.filter(enterprise=enterprise, status=InboundWireStatus.MINTED)[:20],
    }
    return render(request, "settlement/deposits.html", context)


@portal_member()
def redemptions(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    enterprise = membership.enterprise
    can_request = membership.role in REDEEM_ROLES
    form = RedemptionForm(request.POST or None, enterprise=enterprise)
    if request.method == "POST":
        if not can_request:
            raise PermissionDenied(RoleNotPermitted.title)
        if form.is_valid():
            account = form.cleaned_data["bank_account"]
            try:
                redemption = redemption_request(
                    enterprise=enterprise,
                    amount=form.cleaned_data["amount"],
                    currency=account.currency,
                    bank_account=account,
                    actor=Actor(user=request.user),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Redemption {redemption.public_id}: {redemption.get_state_display()}.")
                return redirect("settlement:redemptions")
    context = {
        "form": form,
        "can_request": can_request,
        "can_approve": membership.role in APPROVE_ROLES,
        "can_cancel": membership.role in CANCEL_ROLES,
        "redemptions": redemptions_for(enterprise=enterprise)[:50],
    }
    return render(request, "settlement/redemptions.html", context)


def _redemption_of(request: HttpRequest, public_id: str) -> Redemption:
    return get_object_or_404(Redemption, public_id=public_id, enterprise=request.membership.enterprise)


@require_POST
@portal_member(roles=APPROVE_ROLES)
def redemption_approve_view(request: HttpRequest, public_id: str) -> HttpResponse:
    try:
        redemption = redemption_approve(redemption=_redemption_of(request, public_id), actor=Actor(user=request.user))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Redemption {redemption.public_id} approved: the payout is on its way.")
    return redirect("settlement:redemptions")


@require_POST
@portal_member(roles=CANCEL_ROLES)
def redemption_cancel_view(request: HttpRequest, public_id: str) -> HttpResponse:
    try:
        redemption = redemption_cancel(redemption=_redemption_of(request, public_id), actor=Actor(user=request.user))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Redemption {redemption.public_id} cancelled.")
    return redirect("settlement:redemptions")


@portal_member()
def reserves(request: HttpRequest) -> HttpResponse:
    snapshot = reserves_snapshot()
    return render(request, "settlement/reserves.html", {"snapshot": snapshot})

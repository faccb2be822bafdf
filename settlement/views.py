"""Settlement's HTTP endpoints outside the ERP API: the bank's webhook (and the portal pages below it)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from settlement.bank_events import bank_event_apply
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

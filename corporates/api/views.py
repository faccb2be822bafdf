"""Corporates API views: one view per resource, each a thin call into a service or selector.

Every view is scoped to the caller's enterprise (``EnterpriseScopedMixin``),
every POST is ``@idempotent``, and reads need the ``read`` scope unless
``required_scopes`` says otherwise. Webhook writes (register, delete,
re-send) need the ``webhooks`` scope: they decide where the enterprise's data
goes.
"""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch
from django.utils.module_loading import import_string
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from config import money
from config.api.filters import UtcIsoDateTimeFilter
from corporates.api.idempotency import idempotent
from corporates.api.serializers import (
    BankAccountCreateSerializer,
    BankAccountSerializer,
    MeSerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointRolledSerializer,
    WebhookEndpointSerializer,
    WebhookEventResendSerializer,
    WebhookEventSerializer,
    WebhookResendResultSerializer,
    WebhookSecretRollSerializer,
)
from corporates.api.tenancy import EnterpriseScopedMixin, request_enterprise
from corporates.models import ApiScope, BankAccount, Enterprise, WebhookDelivery, WebhookEndpoint, WebhookEvent
from corporates.onboarding.banking import bank_account_register
from corporates.permissions import principal_person
from corporates.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_secret_roll,
    webhook_event_resend,
)

# The KYB engineer's limits selector; /me shows limits once it exists.
LIMITS_SELECTOR = "corporates.onboarding.limits.limits_all_for"


def _limits(enterprise: Enterprise) -> list[dict] | None:
    try:
        limits_all_for = import_string(LIMITS_SELECTOR)
    except ImportError:
        return None
    rows = []
    for code, limits in limits_all_for(enterprise=enterprise).items():
        row = {"currency": code}
        for field in ("single_payment", "daily_redemption", "approval_threshold"):
            row[field] = money.Money(getattr(limits, field), code)
        rows.append(row)
    return rows


class MeView(APIView):
    @extend_schema(operation_id="me_retrieve", responses=MeSerializer, summary="The calling enterprise and key")
    def get(self, request):
        enterprise = request_enterprise(request)
        payload = {"enterprise": enterprise, "limits": _limits(enterprise), "api_key": request.auth}
        return Response(MeSerializer(payload).data)


# --- webhook endpoints -----------------------------------------------------------


class WebhookEndpointListView(EnterpriseScopedMixin, generics.ListAPIView):
    # Reading endpoints needs "read"; registering one decides where the
    # enterprise's events go, so it needs "webhooks".
    required_scopes = {"POST": ApiScope.WEBHOOKS}
    queryset = WebhookEndpoint.objects.filter(deleted_at__isnull=True)
    serializer_class = WebhookEndpointSerializer

    @extend_schema(
        request=WebhookEndpointCreateSerializer,
        responses={201: WebhookEndpointCreatedSerializer},
        summary="Register a webhook endpoint (the signing secret is in the response)",
    )
    @idempotent
    def post(self, request):
        serializer = WebhookEndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(
            enterprise=request_enterprise(request),
            # The person behind the key must still be an admin (None: a back-office key).
            created_by=principal_person(request.auth),
            **serializer.validated_data,
        )
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailView(EnterpriseScopedMixin, generics.RetrieveDestroyAPIView):
    required_scopes = {"DELETE": ApiScope.WEBHOOKS}
    queryset = WebhookEndpoint.objects.filter(deleted_at__isnull=True)
    serializer_class = WebhookEndpointSerializer

    @extend_schema(responses={204: OpenApiResponse(description="Deleted; pending deliveries are cancelled.")})
    def delete(self, request, *args, **kwargs):
        webhook_endpoint_delete(endpoint=self.get_object(), deleted_by=principal_person(request.auth))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRollSecretView(EnterpriseScopedMixin, generics.GenericAPIView):
    required_scopes = {"POST": ApiScope.WEBHOOKS}
    queryset = WebhookEndpoint.objects.filter(deleted_at__isnull=True)
    serializer_class = WebhookSecretRollSerializer

    @extend_schema(
        request=WebhookSecretRollSerializer,
        responses={200: WebhookEndpointRolledSerializer},
        summary="Roll the signing secret (the new one is in the response; the old one signs too for overlap_hours)",
    )
    @idempotent
    def post(self, request, *args, **kwargs):
        serializer = WebhookSecretRollSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_secret_roll(
            endpoint=self.get_object(),
            rolled_by=principal_person(request.auth),
            overlap_hours=serializer.validated_data["overlap_hours"],
        )
        return Response(WebhookEndpointRolledSerializer(endpoint).data)


# --- events ----------------------------------------------------------------------------


class WebhookEventFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(field_name="type", help_text="Exact event type.")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = WebhookEvent
        fields = ["type", "created_after", "created_before"]


def _events():
    deliveries = WebhookDelivery.objects.select_related("endpoint").order_by("created_at")
    return WebhookEvent.objects.prefetch_related(Prefetch("deliveries", queryset=deliveries))


class WebhookEventListView(EnterpriseScopedMixin, generics.ListAPIView):
    queryset = _events()
    serializer_class = WebhookEventSerializer
    filterset_class = WebhookEventFilter


class WebhookEventDetailView(EnterpriseScopedMixin, generics.RetrieveAPIView):
    queryset = _events()
    serializer_class = WebhookEventSerializer


class WebhookEventResendView(EnterpriseScopedMixin, generics.GenericAPIView):
    required_scopes = {"POST": ApiScope.WEBHOOKS}
    queryset = WebhookEvent.objects.all()
    serializer_class = WebhookEventResendSerializer

    @extend_schema(
        request=WebhookEventResendSerializer,
        responses={202: WebhookResendResultSerializer},
        summary="Send an event again (new deliveries)",
    )
    @idempotent
    def post(self, request, *args, **kwargs):
        event = self.get_object()
        serializer = WebhookEventResendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = None
        if endpoint_id := serializer.validated_data.get("endpoint"):
            endpoint = WebhookEndpoint.objects.filter(enterprise=event.enterprise, public_id=endpoint_id).first()
            if endpoint is None:
                raise NotFound("No such webhook endpoint.")
        deliveries = webhook_event_resend(event=event, endpoint=endpoint)
        return Response(WebhookResendResultSerializer({"deliveries": deliveries}).data, status=status.HTTP_202_ACCEPTED)


# --- bank accounts -------------------------------------------------------------------


class BankAccountListView(EnterpriseScopedMixin, generics.ListAPIView):
    # Bank accounts exist to receive redemption payouts.
    required_scopes = {"POST": ApiScope.REDEMPTIONS}
    queryset = BankAccount.objects.all()
    serializer_class = BankAccountSerializer

    @extend_schema(
        request=BankAccountCreateSerializer,
        responses={201: BankAccountSerializer},
        summary="Register a bank account (pending until the back office verifies it)",
    )
    @idempotent
    def post(self, request):
        serializer = BankAccountCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = bank_account_register(
            enterprise=request_enterprise(request), actor=request.auth, **serializer.validated_data
        )
        return Response(BankAccountSerializer(account).data, status=status.HTTP_201_CREATED)


class BankAccountDetailView(EnterpriseScopedMixin, generics.RetrieveAPIView):
    queryset = BankAccount.objects.all()
    serializer_class = BankAccountSerializer

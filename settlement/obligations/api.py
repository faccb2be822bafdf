"""Obligations for ERP clients.

    POST /api/v1/obligations              one obligation, owed by the caller (payments)
    POST /api/v1/obligations/bulk         up to 10,000: all created, or none and every row's errors (payments)
    GET  /api/v1/obligations[/{id}]       the caller's obligations, owed and owed to it (read)
    POST /api/v1/obligations/{id}/cancel  the payer withdraws a pending obligation before the cut-off (payments)
    POST /api/v1/obligations/{id}/approve a checker's or admin's key approves one above the threshold (payments)

The maker of an obligation made through the API is the person behind the key
(its creator): four eyes holds across keys and the portal alike.

Views are thin: they parse, call one service, and shape the answer.
"""

from __future__ import annotations

import django_filters
from django.db.models import Q
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from config import money
from config.api.exceptions import problem
from config.api.fields import MoneyField, MoneySchema
from config.api.pagination import ApiCursorPagination
from corporates.api.idempotency import idempotent
from corporates.api.tenancy import request_enterprise
from corporates.models import ApiScope
from settlement.netting.cut import cuts_running, in_batch_q, with_running_batches
from settlement.obligations.models import Obligation, ObligationStatus
from settlement.obligations.services import (
    ObligationsInvalid,
    obligation_approve,
    obligation_cancel,
    obligation_create,
    obligations_create_bulk,
)

# --- shapes ---------------------------------------------------------------------------------


class ObligationSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    payer = serializers.CharField(source="payer.public_id")
    payee = serializers.CharField(source="payee.public_id")
    amount = serializers.SerializerMethodField()
    value_date = serializers.DateField()
    external_reference = serializers.CharField()
    memo = serializers.CharField()
    status = serializers.CharField(
        source="status_shown", help_text="pending, in_batch (held by a running batch), settled, failed or cancelled"
    )
    needs_approval = serializers.BooleanField(help_text="Above the payer's threshold and not yet approved")
    batch = serializers.CharField(
        source="batch_public_id_shown", allow_null=True, help_text="The batch that holds or held it (nb_…)"
    )
    reason = serializers.CharField(help_text="Why it rolled into the next batch, failed or was cancelled")
    roll_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    approved_at = serializers.DateTimeField(allow_null=True)
    settled_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(MoneySchema)
    def get_amount(self, obj: Obligation) -> dict:
        return money.Amount(obj.amount, obj.currency).to_json()


class ObligationCreateSerializer(serializers.Serializer):
    payee = serializers.CharField(help_text="The enterprise owed (ent_…)")
    amount = MoneyField()
    value_date = serializers.DateField(help_text="YYYY-MM-DD, Hong Kong calendar day; today or later")
    external_reference = serializers.CharField(max_length=128, help_text="Your invoice or payment id; unique per payer")
    memo = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class BulkRowSerializer(serializers.Serializer):
    """A row as the service reads it: amount and currency side by side, the amount a decimal string."""

    payee = serializers.CharField()
    amount = serializers.CharField()
    currency = serializers.CharField()
    value_date = serializers.CharField()
    external_reference = serializers.CharField()
    memo = serializers.CharField(required=False)


class BulkRequestSerializer(serializers.Serializer):
    obligations = BulkRowSerializer(many=True, help_text="At most 10,000 rows")


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    needs_approval = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.CharField(), help_text="In the order of the rows")


# --- views ---------------------------------------------------------------------------------------


class ObligationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ObligationStatus.choices, method="filter_status")
    direction = django_filters.ChoiceFilter(
        choices=[("outgoing", "Owed by me"), ("incoming", "Owed to me")], method="filter_direction"
    )
    external_reference = django_filters.CharFilter()

    class Meta:
        model = Obligation
        fields = ["status", "direction", "external_reference"]

    def filter_status(self, queryset, name, value):
        # in_batch is not stored: it is pending and held by a running batch's cut.
        held = in_batch_q(cuts_running())
        if value == ObligationStatus.IN_BATCH:
            return queryset.filter(held)
        if value == ObligationStatus.PENDING:
            return queryset.filter(status=value).exclude(held)
        return queryset.filter(status=value)

    def filter_direction(self, queryset, name, value):
        enterprise = request_enterprise(self.request)
        return queryset.filter(payer=enterprise) if value == "outgoing" else queryset.filter(payee=enterprise)


class ObligationPagination(ApiCursorPagination):
    ordering = "-id"


def _visible_obligations(request):
    """An obligation is the caller's when it owes it or is owed it; anything else is not found."""
    enterprise = request_enterprise(request)
    return Obligation.objects.filter(Q(payer=enterprise) | Q(payee=enterprise)).select_related(
        "payer", "payee", "batch"
    )


class ObligationListView(generics.ListAPIView):
    queryset = Obligation.objects.all()  # narrowed to the caller's in get_queryset
    required_scopes = {"POST": ApiScope.PAYMENTS}
    serializer_class = ObligationSerializer
    pagination_class = ObligationPagination
    filterset_class = ObligationFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Obligation.objects.none()
        return _visible_obligations(self.request)

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else with_running_batches(page)

    @extend_schema(
        request=ObligationCreateSerializer, responses={201: ObligationSerializer}, summary="Owe another enterprise"
    )
    @idempotent
    def post(self, request):
        serializer = ObligationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        obligation = obligation_create(
            payer=request_enterprise(request),
            payee=data["payee"],
            amount=money.format_amount(data["amount"].amount, str(data["amount"].currency)),
            currency=str(data["amount"].currency),
            value_date=data["value_date"],
            external_reference=data["external_reference"],
            memo=data["memo"],
            created_by=request.auth,
        )
        return Response(ObligationSerializer(obligation).data, status=status.HTTP_201_CREATED)


class ObligationDetailView(generics.RetrieveAPIView):
    queryset = Obligation.objects.all()  # narrowed to the caller's in get_queryset
    serializer_class = ObligationSerializer
    lookup_field = "public_id"
    lookup_url_kwarg = "id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Obligation.objects.none()
        return _visible_obligations(self.request)

    def get_object(self):
        return with_running_batches([super().get_object()])[0]


class ObligationCancelView(generics.GenericAPIView):
    queryset = Obligation.objects.all()  # narrowed to the caller's in get_queryset
    required_scopes = {"POST": ApiScope.PAYMENTS}
    serializer_class = ObligationSerializer
    lookup_field = "public_id"
    lookup_url_kwarg = "id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Obligation.objects.none()
        return _visible_obligations(self.request)

    @extend_schema(request=None, responses=ObligationSerializer, summary="Cancel a pending obligation (payer only)")
    @idempotent
    def post(self, request, *args, **kwargs):
        obligation = obligation_cancel(obligation=self.get_object(), payer=request_enterprise(request))
        return Response(ObligationSerializer(obligation).data)


class ObligationApproveView(generics.GenericAPIView):
    queryset = Obligation.objects.all()  # narrowed to the payer's in get_queryset
    required_scopes = {"POST": ApiScope.PAYMENTS}
    serializer_class = ObligationSerializer
    lookup_field = "public_id"
    lookup_url_kwarg = "id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Obligation.objects.none()
        # Only the payer approves; the payee may see the obligation but not this action.
        return _visible_obligations(self.request)

    @extend_schema(
        request=None,
        responses=ObligationSerializer,
        summary="Approve an obligation above the payer's threshold (four eyes: not its maker's key or person)",
    )
    @idempotent
    def post(self, request, *args, **kwargs):
        obligation = obligation_approve(obligation=self.get_object(), approver=request.auth)
        return Response(ObligationSerializer(obligation).data)


class ObligationBulkView(generics.GenericAPIView):
    required_scopes = {"POST": ApiScope.PAYMENTS}
    serializer_class = BulkRequestSerializer

    @extend_schema(
        request=BulkRequestSerializer,
        responses={201: BulkResultSerializer},
        summary="Up to 10,000 obligations: all created, or none and a list of every row's errors",
    )
    @idempotent
    def post(self, request):
        rows = request.data.get("obligations") if isinstance(request.data, dict) else None
        if not isinstance(rows, list):
            body = problem(
                status_code=400,
                code="validation_error",
                title="The request is invalid.",
                detail='The body is {"obligations": [ … ]}.',
                instance=request.path,
                errors=[{"field": "obligations", "code": "required", "detail": "A list of rows is required."}],
            )
            return Response(body, status=400, content_type="application/problem+json")
        try:
            result = obligations_create_bulk(payer=request_enterprise(request), rows=rows, created_by=request.auth)
        except ObligationsInvalid as exc:
            # Every row's errors, in the problem's ``errors`` list (field = obligations.<row>.<field>).
            body = problem(
                status_code=exc.http_status,
                code=exc.code,
                title=exc.title,
                detail=exc.message,
                instance=request.path,
                errors=[
                    {"field": f"obligations.{e.row}.{e.field}".rstrip("."), "code": e.code, "detail": e.message}
                    for e in exc.errors
                ],
            )
            return Response(body, status=exc.http_status, content_type="application/problem+json")
        payload = {"created": result.created, "needs_approval": result.needs_approval, "ids": result.public_ids}
        return Response(BulkResultSerializer(payload).data, status=status.HTTP_201_CREATED)

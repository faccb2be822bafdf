"""Netting for ERP clients: the preview of the next cut-off, and the batches the caller took part in.

    GET /api/v1/netting/preview            projected nets per counterparty and currency (read)
    GET /api/v1/netting/batches[/{id}]     batches with the caller's positions and savings (read);
                                           with Accept: text/csv, /{id} is the caller's obligations in it

A batch is visible to the enterprises that had an obligation in it; to any
other it is not found.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config import money
from config.api.pagination import ApiCursorPagination
from config.api.renderers import CSVRenderer
from corporates.api.tenancy import request_enterprise
from settlement.netting.models import NettingBatch, NettingPosition
from settlement.netting.selectors import batches_for, obligations_in_batch_csv
from settlement.netting.services import netting_preview


def _money(minor: int, currency: str) -> dict[str, str]:
    return money.Amount(minor, currency).to_json()


class PreviewRowSerializer(serializers.Serializer):
    counterparty = serializers.CharField()
    currency = serializers.CharField()
    you_owe = serializers.DictField(help_text="Money: what you owe the counterparty")
    owed_to_you = serializers.DictField(help_text="Money: what the counterparty owes you")
    net = serializers.CharField(help_text="Signed decimal string: positive, you receive; negative, you pay")
    obligations = serializers.IntegerField()


class PreviewSerializer(serializers.Serializer):
    value_date = serializers.DateField()
    counterparties = PreviewRowSerializer(many=True)


class NettingPreviewView(APIView):
    @extend_schema(
        operation_id="netting_preview_retrieve", responses=PreviewSerializer, summary="The next cut-off, as it stands"
    )
    def get(self, request):
        from django.utils import timezone

        enterprise = request_enterprise(request)
        rows = netting_preview(enterprise=enterprise)
        body = {
            "value_date": timezone.localdate(),
            "counterparties": [
                {
                    "counterparty": row.counterparty_public_id,
                    "currency": row.currency,
                    "you_owe": _money(row.owes, row.currency),
                    "owed_to_you": _money(row.owed, row.currency),
                    "net": money.format_amount(money.from_minor(row.net, row.currency), row.currency),
                    "obligations": row.obligation_count,
                }
                for row in rows
            ],
        }
        return Response(PreviewSerializer(body).data)


class BatchSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    status = serializers.CharField()
    trigger = serializers.CharField()
    cutoff_at = serializers.DateTimeField()
    value_date = serializers.DateField()
    completed_at = serializers.DateTimeField(allow_null=True)
    passes = serializers.IntegerField()
    phase_seconds = serializers.DictField()
    efficiency_bilateral_pct = serializers.SerializerMethodField()
    efficiency_multilateral_pct = serializers.SerializerMethodField()
    positions = serializers.SerializerMethodField()

    def get_efficiency_bilateral_pct(self, batch) -> str | None:
        return batch.report.get("efficiency_bilateral_pct")

    def get_efficiency_multilateral_pct(self, batch) -> str | None:
        return batch.report.get("efficiency_multilateral_pct")

    def get_positions(self, batch) -> list[dict]:
        """The caller's own figures per currency: gross both ways, bilateral nets, multilateral net, savings."""
        enterprise = self.context["enterprise"]
        rows = []
        for p in NettingPosition.objects.filter(batch=batch, enterprise=enterprise).order_by("currency"):
            rows.append(
                {
                    "currency": p.currency,
                    "owed": _money(p.owes, p.currency),
                    "owed_to_you": _money(p.owed, p.currency),
                    "paid_net": _money(p.net_paid, p.currency),
                    "received_net": _money(p.net_received, p.currency),
                    "multilateral_net": money.format_amount(
                        money.from_minor(p.multilateral_net, p.currency), p.currency
                    ),
                    # What netting spared the enterprise moving: gross out minus what it paid.
                    "saved": _money(p.saved, p.currency),
                }
            )
        return rows


class BatchPagination(ApiCursorPagination):
    ordering = "-id"


def _batches_of(enterprise):
    return batches_for(enterprise=enterprise)


class NettingBatchListView(generics.ListAPIView):
    queryset = NettingBatch.objects.all()  # narrowed to the caller's batches in get_queryset
    serializer_class = BatchSerializer
    pagination_class = BatchPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return NettingBatch.objects.none()
        return _batches_of(request_enterprise(self.request))

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["enterprise"] = request_enterprise(self.request)
        return context


class NettingBatchDetailView(generics.RetrieveAPIView):
    queryset = NettingBatch.objects.all()  # narrowed to the caller's batches in get_queryset
    serializer_class = BatchSerializer
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    renderer_classes = [JSONRenderer, CSVRenderer]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return NettingBatch.objects.none()
        return _batches_of(request_enterprise(self.request))

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["enterprise"] = request_enterprise(self.request)
        return context

    @extend_schema(
        parameters=[OpenApiParameter("Accept", location=OpenApiParameter.HEADER, required=False)],
        summary="A batch with your positions; Accept: text/csv for your obligations in it",
    )
    def get(self, request, *args, **kwargs):
        batch = self.get_object()
        if getattr(request.accepted_renderer, "format", None) == "csv":
            lines = obligations_in_batch_csv(enterprise=request_enterprise(request), batch=batch)
            response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{batch.public_id}.csv"'
            return response
        return Response(self.get_serializer(batch).data)

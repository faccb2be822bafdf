"""FX API views: each makes one call into fx.services or fx.selectors and shapes the result.

Scoped to the calling enterprise (another enterprise's quote is 404), POSTs
are idempotent (an ``Idempotency-Key`` replay returns the same quote or the
same swap), quoting and accepting need the ``fx`` scope.
"""

from __future__ import annotations

import django_filters
from django.db.models import F
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config import money
from config.api.filters import UtcIsoDateTimeFilter
from config.api.pagination import ApiCursorPagination
from config.api.renderers import CSVRenderer
from config.api.shaping import represent
from corporates.api.idempotency import idempotent
from corporates.api.tenancy import EnterpriseScopedMixin, request_enterprise
from corporates.models import ApiScope
from fx import exports, selectors, services
from fx.api.serializers import QuoteCreateSerializer, QuoteSerializer, RatesSerializer, SwapSerializer
from fx.models import Quote, Swap


class QuoteCreateView(APIView):
    required_scopes = {"POST": ApiScope.FX}

    @extend_schema(
        operation_id="fx_quote_create",
        request=QuoteCreateSerializer,
        responses={201: QuoteSerializer},
        summary="A firm quote: both exact amounts, honoured until expires_at",
    )
    @idempotent
    def post(self, request):
        serializer = QuoteCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        quote = services.quote_create(enterprise=request_enterprise(request), **serializer.validated_data)
        return Response(represent(QuoteSerializer, quote), status=status.HTTP_201_CREATED)


class QuoteDetailView(EnterpriseScopedMixin, generics.RetrieveAPIView):
    queryset = Quote.objects.all()
    serializer_class = QuoteSerializer


class QuoteAcceptView(APIView):
    required_scopes = {"POST": ApiScope.FX}

    @extend_schema(
        operation_id="fx_quote_accept",
        request=None,
        responses={201: SwapSerializer},
        summary="Accept a quote before it expires: the swap, as one ledger entry",
    )
    @idempotent
    def post(self, request, id: str):
        swap = services.quote_accept(enterprise=request_enterprise(request), public_id=id)
        return Response(represent(SwapSerializer, swap), status=status.HTTP_201_CREATED)


class RatesView(APIView):
    @extend_schema(operation_id="fx_rates_retrieve", responses=RatesSerializer, summary="Current mid and your rates")
    def get(self, request):
        rates = selectors.rates_current()
        terms = selectors.terms_for(enterprise=request_enterprise(request))
        payload = {
            "published_at": rates.published_at,
            "stale": rates.is_stale(now=timezone.now()),
            "spread_bps": terms.spread_bps,
            "legs": [
                {"currency": code, "mid": mid, "source": rates.sources[code]}
                for code, mid in sorted(rates.legs.items())
            ],
            "pairs": [] if rates.missing else selectors.indicative_rates(rates=rates, spread_bps=terms.spread_bps),
        }
        return Response(represent(RatesSerializer, payload))


class SwapFilter(django_filters.FilterSet):
    currency = django_filters.ChoiceFilter(
        choices=money.CURRENCY_CHOICES, method="filter_currency", help_text="Either side."
    )
    sell_currency = django_filters.ChoiceFilter(choices=money.CURRENCY_CHOICES)
    buy_currency = django_filters.ChoiceFilter(choices=money.CURRENCY_CHOICES)
    accepted_after = UtcIsoDateTimeFilter(field_name="accepted_at", lookup_expr="gte")
    accepted_before = UtcIsoDateTimeFilter(field_name="accepted_at", lookup_expr="lt")

    class Meta:
        model = Swap
        fields = ["currency", "sell_currency", "buy_currency", "accepted_after", "accepted_before"]

    def filter_currency(self, queryset, name, value):
        return queryset.filter(sell_currency=value) | queryset.filter(buy_currency=value)


class SwapPagination(ApiCursorPagination):
    ordering = ("-accepted_at", "-id")


class SwapListView(EnterpriseScopedMixin, generics.ListAPIView):
    queryset = Swap.objects.annotate(
        quote_public_id=F("quote__public_id"), journal_entry_public_id=F("journal_entry__public_id")
    )
    serializer_class = SwapSerializer
    filterset_class = SwapFilter
    pagination_class = SwapPagination
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        operation_id="fx_swaps_list",
        summary="Swap history, newest first (JSON pages, or every matching swap as CSV)",
        responses={200: OpenApiResponse(response=SwapSerializer(many=True), description="Or text/csv.")},
    )
    def get(self, request, *args, **kwargs):
        if request.accepted_renderer.format == "csv":
            return exports.swaps_csv_response(self.filter_queryset(self.get_queryset()).order_by("-accepted_at", "-id"))
        return super().get(request, *args, **kwargs)

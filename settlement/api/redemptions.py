"""Mint and redeem for ERP clients: deposit instructions, redemptions, reserves.

    GET  /api/v1/deposits/instructions        where to wire fiat, per currency (read)
    POST /api/v1/redemptions                  redeem at par to a verified bank account (redemptions)
    GET  /api/v1/redemptions[/{id}]           the enterprise's redemptions and their states (read)
    POST /api/v1/redemptions/{id}/approve     a second key approves above the threshold (redemptions)
    POST /api/v1/redemptions/{id}/cancel      withdraw before approval (redemptions)
    GET  /api/v1/reserves                     backing per currency, ledger and custodian (read)

Views are thin: they parse, call one service or selector, and shape the
answer; every business refusal is the service's error, as a problem detail.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config import money
from config.api.fields import MoneyField, MoneySchema
from config.api.pagination import ApiCursorPagination
from corporates.api.idempotency import idempotent
from corporates.api.tenancy import EnterpriseScopedMixin, request_enterprise
from corporates.models import ApiScope, BankAccount
from settlement.deposits.services import deposit_instructions_for
from settlement.redemptions.models import Redemption
from settlement.redemptions.services import (
    Actor,
    RedemptionBankAccountNotFound,
    redemption_approve,
    redemption_cancel,
    redemption_request,
)
from settlement.reserves import reserves_snapshot

# --- shapes ------------------------------------------------------------------------------


class DepositInstructionSerializer(serializers.Serializer):
    currency = serializers.CharField()
    reference = serializers.CharField(help_text="Quote it on the wire: it names your wallet.")
    bank_name = serializers.CharField()
    account_name = serializers.CharField()
    account_number = serializers.CharField()
    swift_code = serializers.CharField()


class DepositInstructionsSerializer(serializers.Serializer):
    instructions = DepositInstructionSerializer(many=True)


class FailureSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The bank's failure code, e.g. account_closed.")
    message = serializers.CharField()


class RedemptionSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    state = serializers.CharField(
        help_text=(
            "requested, awaiting_approval, processing, paid, failed, cancelled or returned (see the timestamps). "
            "returned: the bank paid the payout, then the beneficiary's bank sent the funds back; the tokens "
            "are in the wallet again and `failure` says why."
        )
    )
    amount = serializers.SerializerMethodField()
    bank_account = serializers.CharField(source="bank_account.public_id")
    needs_approval = serializers.BooleanField()
    requested_at = serializers.DateTimeField()
    approved_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    returned_at = serializers.DateTimeField(
        allow_null=True, help_text="When the bank reported the paid payout failed and the tokens came back."
    )
    deadline_at = serializers.DateTimeField(
        allow_null=True, help_text="The end of the next Hong Kong working day after approval."
    )
    failure = serializers.SerializerMethodField()

    @extend_schema_field(MoneySchema)
    def get_amount(self, obj: Redemption) -> dict:
        return money.Amount(obj.amount, obj.currency).to_json()

    @extend_schema_field(FailureSerializer(allow_null=True))
    def get_failure(self, obj: Redemption) -> dict | None:
        return {"code": obj.failure_code, "message": obj.failure_message} if obj.failure_code else None


class RedemptionCreateSerializer(serializers.Serializer):
    amount = MoneyField(help_text="Paid out at par: the bank account receives exactly this.")
    bank_account = serializers.CharField(help_text="A verified bank account (ba_…) in the same currency.")


class ReserveSerializer(serializers.Serializer):
    currency = serializers.CharField()
    tokens_outstanding = MoneyField(allow_zero=True)
    reserve_ledger = MoneyField(allow_zero=True)
    reserve_custodian = MoneyField(allow_zero=True, allow_null=True, help_text="null when the bank did not answer.")
    backing_ratio = serializers.CharField(allow_null=True, help_text="Ledger reserve / tokens outstanding.")


class ReservesSerializer(serializers.Serializer):
    taken_at = serializers.DateTimeField()
    reconciled = serializers.BooleanField()
    reserves = ReserveSerializer(many=True)


# --- views -----------------------------------------------------------------------------------


class DepositInstructionsView(APIView):
    @extend_schema(
        operation_id="deposit_instructions_retrieve",
        responses=DepositInstructionsSerializer,
        summary="Where to wire fiat to mint tokens 1:1",
    )
    def get(self, request):
        instructions = deposit_instructions_for(enterprise=request_enterprise(request))
        return Response(DepositInstructionsSerializer({"instructions": instructions}).data)


class RedemptionPagination(ApiCursorPagination):
    ordering = "-id"  # grows with every request; ids stay internal (the cursor is opaque)


def _actor(request) -> Actor:
    return Actor(api_key=request.auth)


class RedemptionListView(EnterpriseScopedMixin, generics.ListAPIView):
    required_scopes = {"POST": ApiScope.REDEMPTIONS}
    queryset = Redemption.objects.select_related("bank_account")
    serializer_class = RedemptionSerializer
    pagination_class = RedemptionPagination
    filterset_fields = ["state", "currency"]

    @extend_schema(
        request=RedemptionCreateSerializer,
        responses={201: RedemptionSerializer},
        summary="Redeem at par (no fee); approved at once at or below the threshold",
    )
    @idempotent
    def post(self, request):
        enterprise = request_enterprise(request)
        serializer = RedemptionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        amount = serializer.validated_data["amount"]
        account = BankAccount.objects.filter(
            enterprise=enterprise, public_id=serializer.validated_data["bank_account"]
        ).first()
        if account is None:
            raise RedemptionBankAccountNotFound(field="bank_account")
        redemption = redemption_request(
            enterprise=enterprise,
            amount=amount.amount,
            currency=str(amount.currency),
            bank_account=account,
            actor=_actor(request),
        )
        return Response(RedemptionSerializer(redemption).data, status=status.HTTP_201_CREATED)


class RedemptionDetailView(EnterpriseScopedMixin, generics.RetrieveAPIView):
    queryset = Redemption.objects.select_related("bank_account")
    serializer_class = RedemptionSerializer


class RedemptionApproveView(EnterpriseScopedMixin, generics.GenericAPIView):
    required_scopes = {"POST": ApiScope.REDEMPTIONS}
    queryset = Redemption.objects.select_related("bank_account")
    serializer_class = RedemptionSerializer

    @extend_schema(request=None, responses=RedemptionSerializer, summary="Approve (never by the requesting key)")
    @idempotent
    def post(self, request, *args, **kwargs):
        redemption = redemption_approve(redemption=self.get_object(), actor=_actor(request))
        return Response(RedemptionSerializer(redemption).data)


class RedemptionCancelView(EnterpriseScopedMixin, generics.GenericAPIView):
    required_scopes = {"POST": ApiScope.REDEMPTIONS}
    queryset = Redemption.objects.select_related("bank_account")
    serializer_class = RedemptionSerializer

    @extend_schema(request=None, responses=RedemptionSerializer, summary="Cancel before approval")
    @idempotent
    def post(self, request, *args, **kwargs):
        redemption = redemption_cancel(redemption=self.get_object(), actor=_actor(request))
        return Response(RedemptionSerializer(redemption).data)


class ReservesView(APIView):
    @extend_schema(operation_id="reserves_retrieve", responses=ReservesSerializer, summary="Backing per currency")
    def get(self, request):
        snapshot = reserves_snapshot()
        rows = []
        for position in snapshot.currencies.values():
            code = position.currency
            custodian = position.reserve_custodian
            rows.append(
                {
                    "currency": code,
                    "tokens_outstanding": money.Amount(position.tokens_outstanding, code),
                    "reserve_ledger": money.Amount(position.reserve_ledger, code),
                    "reserve_custodian": None if custodian is None else money.Amount(custodian, code),
                    "backing_ratio": None if position.backing_ratio is None else str(position.backing_ratio),
                }
            )
        payload = {"taken_at": snapshot.taken_at, "reconciled": snapshot.reconciled, "reserves": rows}
        return Response(ReservesSerializer(payload).data)

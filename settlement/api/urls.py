"""ERP API URLs of settlement, mounted under /api/v1/."""

from django.urls import path

from settlement.api import ledger, redemptions
from settlement.netting import api as netting_api
from settlement.obligations import api as obligations_api

urlpatterns: list = [
    path("balances", ledger.BalancesView.as_view(), name="api-balances"),
    path("accounts/<str:currency>/statement", ledger.StatementView.as_view(), name="api-statement"),
    # Mint and redeem (issue 4).
    path("deposits/instructions", redemptions.DepositInstructionsView.as_view(), name="api-deposit-instructions"),
    path("redemptions", redemptions.RedemptionListView.as_view(), name="api-redemptions"),
    path("redemptions/<str:id>", redemptions.RedemptionDetailView.as_view(), name="api-redemption"),
    path("redemptions/<str:id>/approve", redemptions.RedemptionApproveView.as_view(), name="api-redemption-approve"),
    path("redemptions/<str:id>/cancel", redemptions.RedemptionCancelView.as_view(), name="api-redemption-cancel"),
    path("reserves", redemptions.ReservesView.as_view(), name="api-reserves"),
    # Obligations and netting (issue 6).
    path("obligations", obligations_api.ObligationListView.as_view(), name="api-obligations"),
    path("obligations/bulk", obligations_api.ObligationBulkView.as_view(), name="api-obligations-bulk"),
    path("obligations/<str:id>", obligations_api.ObligationDetailView.as_view(), name="api-obligation"),
    path("obligations/<str:id>/cancel", obligations_api.ObligationCancelView.as_view(), name="api-obligation-cancel"),
    path(
        "obligations/<str:id>/approve", obligations_api.ObligationApproveView.as_view(), name="api-obligation-approve"
    ),
    path("netting/preview", netting_api.NettingPreviewView.as_view(), name="api-netting-preview"),
    path("netting/batches", netting_api.NettingBatchListView.as_view(), name="api-netting-batches"),
    path("netting/batches/<str:id>", netting_api.NettingBatchDetailView.as_view(), name="api-netting-batch"),
]

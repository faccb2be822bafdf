"""ERP API URLs of settlement, mounted under /api/v1/."""

from django.urls import path

from settlement.api import ledger, redemptions

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
]

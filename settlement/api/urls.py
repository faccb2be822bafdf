"""ERP API URLs of settlement, mounted under /api/v1/."""

from django.urls import path

from settlement.api import ledger

urlpatterns: list = [
    path("balances", ledger.BalancesView.as_view(), name="api-balances"),
    path("accounts/<str:currency>/statement", ledger.StatementView.as_view(), name="api-statement"),
]

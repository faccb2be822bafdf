"""Portal URLs of settlement (server-rendered pages)."""

from django.urls import path

from settlement import views
from settlement.netting import views as netting_views

app_name = "settlement"
urlpatterns: list = [
    # --- mint and redeem (issue 4) ---
    path("deposits/", views.deposits, name="deposits"),
    path("redemptions/", views.redemptions, name="redemptions"),
    path("redemptions/<str:public_id>/approve/", views.redemption_approve_view, name="redemption_approve"),
    path("redemptions/<str:public_id>/cancel/", views.redemption_cancel_view, name="redemption_cancel"),
    path("reserves/", views.reserves, name="reserves"),
    # --- obligations and netting (issue 6) ---
    path("netting/", netting_views.netting_home, name="netting"),
    path("netting/obligations-template.csv", netting_views.obligations_template, name="obligations_template"),
    path("netting/obligations/<str:public_id>/cancel/", netting_views.obligation_cancel_view, name="obligation_cancel"),
    path(
        "netting/obligations/<str:public_id>/approve/",
        netting_views.obligation_approve_view,
        name="obligation_approve",
    ),
    path("netting/batches/<str:public_id>/", netting_views.netting_batch, name="netting_batch"),
    path("netting/batches/<str:public_id>/csv", netting_views.netting_batch_csv, name="netting_batch_csv"),
]

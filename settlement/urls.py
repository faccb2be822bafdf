"""Portal URLs of settlement (server-rendered pages)."""

from django.urls import path

from settlement import views

app_name = "settlement"
urlpatterns: list = [
    # --- mint and redeem (issue 4) ---
    path("deposits/", views.deposits, name="deposits"),
    path("redemptions/", views.redemptions, name="redemptions"),
    path("redemptions/<str:public_id>/approve/", views.redemption_approve_view, name="redemption_approve"),
    path("redemptions/<str:public_id>/cancel/", views.redemption_cancel_view, name="redemption_cancel"),
    path("reserves/", views.reserves, name="reserves"),
]

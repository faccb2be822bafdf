"""ERP API URLs of fx, mounted under /api/v1/."""

from django.urls import path

from fx.api import views

urlpatterns = [
    path("fx/quotes", views.QuoteCreateView.as_view(), name="api-fx-quotes"),
    path("fx/quotes/<str:id>", views.QuoteDetailView.as_view(), name="api-fx-quote"),
    path("fx/quotes/<str:id>/accept", views.QuoteAcceptView.as_view(), name="api-fx-quote-accept"),
    path("fx/rates", views.RatesView.as_view(), name="api-fx-rates"),
    path("fx/swaps", views.SwapListView.as_view(), name="api-fx-swaps"),
]

"""ERP API URLs of corporates, mounted under /api/v1/."""

from django.urls import path

from corporates.api import views

urlpatterns = [
    path("me", views.MeView.as_view(), name="api-me"),
    path("webhook-endpoints", views.WebhookEndpointListView.as_view(), name="api-webhook-endpoints"),
    path("webhook-endpoints/<str:id>", views.WebhookEndpointDetailView.as_view(), name="api-webhook-endpoint"),
    path(
        "webhook-endpoints/<str:id>/roll-secret",
        views.WebhookEndpointRollSecretView.as_view(),
        name="api-webhook-endpoint-roll-secret",
    ),
    path("bank-accounts", views.BankAccountListView.as_view(), name="api-bank-accounts"),
    path("bank-accounts/<str:id>", views.BankAccountDetailView.as_view(), name="api-bank-account"),
    path("events", views.WebhookEventListView.as_view(), name="api-events"),
    path("events/<str:id>", views.WebhookEventDetailView.as_view(), name="api-event"),
    path("events/<str:id>/resend", views.WebhookEventResendView.as_view(), name="api-event-resend"),
]

from django.contrib import admin
from django.urls import include, path

from settlement import views as settlement_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("fx/", include("fx.urls")),
    path("settlement/", include("settlement.urls")),
    # The custodian bank's signed events (banksim's default webhook URL).
    path("webhooks/bank/", settlement_views.bank_webhook, name="bank-webhook"),
    path("", include("corporates.urls")),
]

# Under /api/ errors are problem details, never an HTML page (config/api/exceptions.py).
handler400 = "config.api.exceptions.handler400"
handler403 = "config.api.exceptions.handler403"
handler404 = "config.api.exceptions.handler404"
handler500 = "config.api.exceptions.handler500"

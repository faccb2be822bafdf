from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("fx/", include("fx.urls")),
    path("settlement/", include("settlement.urls")),
    path("", include("corporates.urls")),
]

# Under /api/ errors are problem details, never an HTML page (config/api/exceptions.py).
handler400 = "config.api.exceptions.handler400"
handler403 = "config.api.exceptions.handler403"
handler404 = "config.api.exceptions.handler404"
handler500 = "config.api.exceptions.handler500"

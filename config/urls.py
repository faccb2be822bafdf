from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("fx/", include("fx.urls")),
    path("settlement/", include("settlement.urls")),
    path("", include("corporates.urls")),
]

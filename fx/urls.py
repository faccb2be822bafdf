"""Portal URLs of fx (server-rendered pages)."""

from django.urls import path  # noqa: F401

app_name = "fx"
urlpatterns: list = []

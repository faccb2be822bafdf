"""Portal URLs of corporates (server-rendered pages)."""

from django.urls import path  # noqa: F401

app_name = "corporates"
urlpatterns: list = []

"""ERP API URLs of settlement, mounted under /api/v1/."""

from django.urls import path  # noqa: F401

urlpatterns: list = []

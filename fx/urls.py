"""Portal URLs of fx (server-rendered pages), under /fx/."""

from django.urls import path

from fx import views

app_name = "fx"
urlpatterns = [
    path("", views.swap, name="swap"),
    path("quotes/", views.quote_create, name="quote_create"),
    path("quotes/<str:public_id>/", views.quote_detail, name="quote_detail"),
    path("quotes/<str:public_id>/accept/", views.quote_accept, name="quote_accept"),
    path("rates/", views.rates, name="rates"),
    path("swaps/", views.swaps, name="swaps"),
]

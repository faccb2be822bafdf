"""Portal URLs of corporates (server-rendered pages).

Sign-in and two-factor first, then the pages of a signed-in member. Other
engineers' pages (application form, bank accounts, API keys, webhooks) add
their lines in the marked sections.
"""

from django.contrib.auth.views import LogoutView
from django.urls import path

from corporates import views

app_name = "corporates"
urlpatterns = [
    # --- sign-in ---
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("two-factor/", views.two_factor_verify, name="two_factor_verify"),
    path("two-factor/setup/", views.two_factor_setup, name="two_factor_setup"),
    path("invitations/<str:token>/accept/", views.invitation_accept, name="invitation_accept"),
    # --- dashboard and statements ---
    path("", views.dashboard, name="dashboard"),
    path("statement/<str:currency>/", views.statement, name="statement"),
    # --- members ---
    path("members/", views.members, name="members"),
    path("members/invite/", views.member_invite, name="member_invite"),
    path("members/<int:member_id>/role/", views.member_change_role, name="member_change_role"),
    path("members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path("invitations/<str:public_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
]

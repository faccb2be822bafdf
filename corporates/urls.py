"""Portal URLs of corporates (server-rendered pages).

Sign-in and two-factor first, then the pages of a signed-in member. Other
engineers' pages (application form, bank accounts, API keys, webhooks) add
their lines in the marked sections.
"""

from django.contrib.auth.views import LogoutView
from django.urls import path

from corporates import views, views_access, views_banking, views_onboarding

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
    # --- API keys and webhooks (admins; corporates/views_access.py) ---
    path("api-keys/", views_access.api_keys, name="api_keys"),
    path("api-keys/<str:public_id>/revoke/", views_access.api_key_revoke, name="api_key_revoke"),
    path("webhooks/", views_access.webhooks, name="webhooks"),
    path("webhooks/<str:public_id>/delete/", views_access.webhook_endpoint_delete, name="webhook_endpoint_delete"),
    path(
        "webhooks/<str:public_id>/roll-secret/",
        views_access.webhook_endpoint_roll_secret,
        name="webhook_endpoint_roll_secret",
    ),
    path("webhooks/events/<str:public_id>/resend/", views_access.webhook_event_resend, name="webhook_event_resend"),
    # --- bank accounts (corporates/views_banking.py) ---
    path("bank-accounts/", views_banking.bank_accounts, name="bank_accounts"),
    # --- KYB application (corporates/views_onboarding.py) ---
    path("apply/", views_onboarding.application_apply, name="apply"),
    path("application/", views_onboarding.application_status, name="application_status"),
    path("kyb/documents/<str:public_id>/", views_onboarding.kyb_document_download, name="kyb_document"),
]

"""The back office's door: Django admin lets staff in only past TOTP two-factor.

The issuer's back office approves, freezes and unfreezes enterprises and
verifies the bank accounts payouts go to: a stolen staff password alone must
not be enough. ``BackOfficeAdminSite`` is django-otp's ``OTPAdminSite`` (its
``has_permission`` adds ``request.user.is_verified()`` to Django's is_active
and is_staff), with the sign-in in two steps like the portal's:

1. the admin's own password form (Django's, throttled by django-axes);
2. the portal's code prompt (``corporates:two_factor_verify``), or, for staff
   without a confirmed authenticator, its enrolment page
   (``corporates:two_factor_setup``); both send the user back to the admin
   page asked for. Those pages check codes through ``corporates.members``
   (throttled, one use per code).

``corporates.admin`` gives ``admin.site`` this class, so every ModelAdmin
registered on the default site (by any app) sits behind the same check.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import user_has_device
from django_otp.admin import OTPAdminSite


def staff_two_factor_pending(request: HttpRequest) -> str | None:
    """The URL name a signed-in, unverified staff user must visit first; None when nothing is pending."""
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff) or user.is_verified():
        return None
    if user_has_device(user, confirmed=True):
        return "corporates:two_factor_verify"
    return "corporates:two_factor_setup"


class BackOfficeAdminSite(OTPAdminSite):
    # Step 1 is the plain password form; the code is asked on the next page.
    login_form = AdminAuthenticationForm
    login_template = None

    def __init__(self, name: str = "admin") -> None:
        # OTPAdminSite defaults to "otpadmin"; the back office keeps admin's URL names.
        super().__init__(name)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        pending = staff_two_factor_pending(request)
        if pending is not None:
            query = urlencode({REDIRECT_FIELD_NAME: self._next(request)}, safe="/")
            return redirect(f"{reverse(pending)}?{query}")
        return super().login(request, extra_context)

    def _next(self, request: HttpRequest) -> str:
        target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
        if url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return target
        return reverse("admin:index", current_app=self.name)

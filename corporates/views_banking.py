"""Portal page for the enterprise's bank accounts (redemption payouts): list and register.

Thin over corporates.onboarding.banking. Only an admin registers; every
member sees the list (numbers masked). The back office verifies in admin.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from config.errors import DomainError
from corporates.forms import BankAccountForm
from corporates.models import BankAccount
from corporates.onboarding import banking
from corporates.permissions import ALL_ROLES, MANAGE_ROLES, portal_member


def _page(request: HttpRequest, form: BankAccountForm, status: int = 200) -> HttpResponse:
    enterprise = request.membership.enterprise
    context = {
        "enterprise": enterprise,
        "form": form,
        "accounts": BankAccount.objects.filter(enterprise=enterprise).order_by("-created_at"),
        "is_admin": request.membership.role in MANAGE_ROLES,
    }
    return render(request, "portal/bank_accounts.html", context, status=status)


@portal_member(roles=ALL_ROLES, write_roles=MANAGE_ROLES)
def bank_accounts(request: HttpRequest) -> HttpResponse:
    """Every member sees the list; only an admin registers (the service checks again)."""
    if request.method != "POST":
        return _page(request, BankAccountForm())
    form = BankAccountForm(request.POST)
    if form.is_valid():
        try:
            account = banking.bank_account_register(
                enterprise=request.membership.enterprise, actor=request.user, **form.cleaned_data
            )
        except DomainError as exc:
            field = exc.context.get("field")
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(
                request, f"Bank account {account.masked_number} registered; the back office verifies it before payouts."
            )
            return redirect("corporates:bank_accounts")
    return _page(request, form, status=400)

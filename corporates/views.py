"""Portal pages of corporates: sign-in with two-factor, dashboard, statement, members.

Views are thin: each reads its input through a form, makes one service (or
selector) call and renders the result or the service's error. Access rules
live in corporates.permissions (``portal_member``) and in the services.
The portal reads the ledger through selectors named in settings, because
corporates does not import settlement.
"""

from __future__ import annotations

import base64
import csv
import io

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from config import money
from config.errors import DomainError
from corporates import members as member_services
from corporates.forms import (
    InvitationAcceptForm,
    InviteForm,
    RoleChangeForm,
    SignInForm,
    StatementFilterForm,
    TotpForm,
)
from corporates.models import EnterpriseStatus, Invitation, Membership
from corporates.permissions import MANAGE_ROLES, membership_of, portal_member, role_requires_two_factor

INVITATION_LINK_SESSION_KEY = "portal_invitation_link"


class SignInView(LoginView):
    template_name = "registration/login.html"
    form_class = SignInForm
    redirect_authenticated_user = True


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return settings.LOGIN_REDIRECT_URL


# --- two-factor ------------------------------------------------------------------


def _two_factor_passed(request: HttpRequest, device) -> None:
    # The session gains privileges here: give it a new key, so that a key
    # planted or seen before verification is worth nothing after it.
    request.session.cycle_key()
    otp_login(request, device)


@never_cache
@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    if request.user.is_verified():
        return redirect(_next_url(request))
    if not user_has_device(request.user, confirmed=True):
        return redirect("corporates:two_factor_setup")
    form = TotpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = member_services.totp_verify(user=request.user, token=form.cleaned_data["token"])
        except DomainError as exc:
            form.add_error("token", exc.message)
        else:
            _two_factor_passed(request, device)
            return redirect(_next_url(request))
    return render(request, "registration/two_factor_verify.html", {"form": form, "next": _next_url(request)})


def _qr_svg_data_uri(text: str) -> str:
    # Rendered on the server as SVG: no script, no third party sees the secret.
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


@never_cache
@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    try:
        device = member_services.totp_device_pending(user=request.user)
    except member_services.TwoFactorAlreadySet:
        return redirect("corporates:two_factor_verify")
    form = TotpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = member_services.totp_confirm(user=request.user, token=form.cleaned_data["token"])
        except DomainError as exc:
            form.add_error("token", exc.message)
        else:
            _two_factor_passed(request, device)
            messages.success(request, "Two-factor sign-in is on. You will need a code from your app at each sign-in.")
            # Back-office staff enrolling on their way into admin return there.
            return redirect(_next_url(request))
    secret = base64.b32encode(device.bin_key).decode()
    try:
        optional = not role_requires_two_factor(membership_of(request.user).role)
    except DomainError:
        optional = False
    context = {
        "form": form,
        "qr_data_uri": _qr_svg_data_uri(device.config_url),
        # Grouped in fours for typing into an app by hand.
        "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
        "optional": optional,
        "next": _next_url(request),
    }
    return render(request, "registration/two_factor_setup.html", context)


# --- dashboard and statement -------------------------------------------------------


# Never approved: no wallets yet (or ever), so the application's status page is the member's home.
APPLICATION_STATUSES = frozenset({EnterpriseStatus.APPLIED, EnterpriseStatus.UNDER_REVIEW, EnterpriseStatus.REJECTED})


@portal_member()
def dashboard(request: HttpRequest) -> HttpResponse:
    """Balances per currency. A frozen enterprise keeps its dashboard, with the freeze shown above them."""
    enterprise = request.membership.enterprise
    if enterprise.status in APPLICATION_STATUSES:
        return redirect("corporates:application_status")
    balances = import_string(settings.PORTAL_BALANCES_SELECTOR)(enterprise=enterprise)
    rows = [
        {"currency": code, "name": money.CURRENCY_NAMES[code], "minor": balances.get(code, 0)}
        for code in money.CURRENCY_CODES
    ]
    return render(request, "portal/dashboard.html", {"enterprise": enterprise, "balances": rows})


def _csv_cell(text: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet: neutralise text
    # cells (memo, kind) so an exported statement cannot run anything.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@portal_member()
def statement(request: HttpRequest, currency: str) -> HttpResponse:
    if currency not in money.CURRENCY_CODES:
        raise Http404("Unknown currency")
    enterprise = request.membership.enterprise
    if enterprise.status in APPLICATION_STATUSES:
        return redirect("corporates:application_status")
    form = StatementFilterForm(request.GET or None)
    dates = form.cleaned_data if form.is_valid() else {}
    result = import_string(settings.PORTAL_STATEMENT_SELECTOR)(
        enterprise=enterprise, currency=currency, date_from=dates.get("date_from"), date_to=dates.get("date_to")
    )
    if request.GET.get("format") == "csv" and form.is_valid():
        return _statement_csv(enterprise.public_id, result)
    context = {
        "enterprise": enterprise,
        "currency": currency,
        "currencies": money.CURRENCY_CODES,
        "form": form,
        "statement": result,
        # The page shows the first lines of a long period; the CSV has them all.
        "lines": result.lines[: settings.PORTAL_STATEMENT_PAGE_LINES],
        "truncated": len(result.lines) > settings.PORTAL_STATEMENT_PAGE_LINES,
        "hidden": max(len(result.lines) - settings.PORTAL_STATEMENT_PAGE_LINES, 0),
        "csv_query": request.GET.urlencode(),
    }
    return render(request, "portal/statement.html", context)


def _statement_csv(enterprise_id: str, result) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    period = f"{result.date_from or 'start'}_{result.date_to or 'today'}"
    response["Content-Disposition"] = f'attachment; filename="statement_{enterprise_id}_{result.currency}_{period}.csv"'
    writer = csv.writer(response)
    writer.writerow(["date", "entry", "kind", "memo", "amount", "balance", "currency"])
    code = result.currency
    writer.writerow(["", "", "Opening balance", "", "", money.from_minor(result.opening_minor, code), code])
    for line in result.lines:
        writer.writerow(
            [
                timezone.localtime(line.created_at).isoformat(timespec="seconds"),
                line.entry_id,
                _csv_cell(line.kind),
                _csv_cell(line.memo),
                money.from_minor(line.amount_minor, code),
                money.from_minor(line.balance_minor, code),
                code,
            ]
        )
    return response


# --- members -----------------------------------------------------------------


def _members_context(request: HttpRequest, invite_form: InviteForm) -> dict:
    enterprise = request.membership.enterprise
    return {
        "enterprise": enterprise,
        "members": enterprise.memberships.select_related("user")
        .annotate(two_factor=Exists(TOTPDevice.objects.filter(user_id=OuterRef("user_id"), confirmed=True)))
        .order_by("user__username"),
        "invitations": enterprise.invitations.filter(accepted_at__isnull=True, revoked_at__isnull=True),
        "is_admin": request.membership.role in MANAGE_ROLES,
        "invite_form": invite_form,
        "role_choices": Membership._meta.get_field("role").choices,
    }


@portal_member()
def members(request: HttpRequest) -> HttpResponse:
    context = _members_context(request, InviteForm())
    # Shown once, straight after the invitation was made.
    context["invitation_link"] = request.session.pop(INVITATION_LINK_SESSION_KEY, None)
    return render(request, "portal/members.html", context)


@require_POST
@portal_member(roles=MANAGE_ROLES)
def member_invite(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            issued = member_services.member_invite(
                actor=request.user,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                site_url=request.build_absolute_uri("/"),
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            request.session[INVITATION_LINK_SESSION_KEY] = issued.accept_url
            messages.success(request, f"Invitation for {issued.invitation.email} created and sent.")
            return redirect("corporates:members")
    return render(request, "portal/members.html", _members_context(request, form), status=400)


def _member_of_tenant(request: HttpRequest, member_id: int) -> Membership:
    # Another enterprise's member answers 404, never 403.
    return get_object_or_404(Membership, pk=member_id, enterprise=request.membership.enterprise)


@require_POST
@portal_member(roles=MANAGE_ROLES)
def member_change_role(request: HttpRequest, member_id: int) -> HttpResponse:
    membership = _member_of_tenant(request, member_id)
    form = RoleChangeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles listed.")
        return redirect("corporates:members")
    try:
        changed = member_services.member_change_role(
            actor=request.user, membership=membership, role=form.cleaned_data["role"]
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{changed.user.get_username()} is now {changed.get_role_display().lower()}.")
    return redirect("corporates:members")


@require_POST
@portal_member(roles=MANAGE_ROLES)
def member_remove(request: HttpRequest, member_id: int) -> HttpResponse:
    membership = _member_of_tenant(request, member_id)
    try:
        member_services.member_remove(actor=request.user, membership=membership)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{membership.user.get_username()} no longer has access.")
    return redirect("corporates:members")


@require_POST
@portal_member(roles=MANAGE_ROLES)
def invitation_revoke(request: HttpRequest, public_id: str) -> HttpResponse:
    invitation = get_object_or_404(Invitation, public_id=public_id, enterprise=request.membership.enterprise)
    try:
        member_services.invitation_revoke(actor=request.user, invitation=invitation)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The invitation for {invitation.email} was withdrawn.")
    return redirect("corporates:members")


@never_cache
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = member_services.invitation_lookup(token=token)
    except DomainError as exc:
        return render(request, "registration/invitation_invalid.html", {"error": exc}, status=exc.http_status)
    form = InvitationAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = member_services.invitation_accept(token=token, password=form.cleaned_data["password1"])
        except ValidationError as exc:
            form.add_error("password1", exc)
        except DomainError as exc:
            return render(request, "registration/invitation_invalid.html", {"error": exc}, status=exc.http_status)
        else:
            auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome to Harbourline. Now set up two-factor sign-in.")
            return redirect("corporates:two_factor_setup")
    return render(request, "registration/invitation_accept.html", {"form": form, "invitation": invitation})

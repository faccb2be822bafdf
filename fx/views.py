"""Portal pages of fx: swap (live quote, countdown, re-quote, confirm), rates (SVG history), swaps history.

Thin: each view reads a form, makes one service or selector call, and renders
the result or the service's error. Makers (and admins) swap; every member
reads.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from config import money
from config.errors import DomainError
from corporates.permissions import INITIATE_ROLES, portal_member
from fx import charts, exports, selectors, services
from fx.forms import QuoteForm, SwapFilterForm
from settlement.ledger.selectors import balances_for

SWAP_ROLES = INITIATE_ROLES
CHART_WINDOW = timedelta(hours=1)


def _swap_page(request: HttpRequest, form: QuoteForm, status: int = 200) -> HttpResponse:
    enterprise = request.membership.enterprise
    rates = selectors.rates_current()
    terms = selectors.terms_for(enterprise=enterprise)
    context = {
        "form": form,
        "enterprise": enterprise,
        "can_swap": request.membership.role in SWAP_ROLES,
        "stale": rates.is_stale(now=timezone.now()),
        "pairs": [] if rates.missing else selectors.indicative_rates(rates=rates, spread_bps=terms.spread_bps),
        "terms": terms,
        "balances": [(code, minor) for code, minor in balances_for(enterprise=enterprise).items()],
    }
    return render(request, "fx/swap.html", context, status=status)


@portal_member()
def swap(request: HttpRequest) -> HttpResponse:
    return _swap_page(request, QuoteForm(initial={"sell_currency": "USD", "buy_currency": "HKD"}))


@require_POST
@portal_member(roles=SWAP_ROLES)
def quote_create(request: HttpRequest) -> HttpResponse:
    form = QuoteForm(request.POST)
    if not form.is_valid():
        return _swap_page(request, form, status=400)
    try:
        quote = services.quote_create(enterprise=request.membership.enterprise, **form.service_kwargs())
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _swap_page(request, form, status=exc.http_status if exc.http_status < 500 else 409)
    return redirect("fx:quote_detail", public_id=quote.public_id)


@portal_member()
def quote_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    quote = selectors.quote_get(enterprise=request.membership.enterprise, public_id=public_id)
    if quote is None:
        raise Http404("No such quote.")
    now = timezone.now()
    remaining_ms = max(0, (quote.expires_at - now) // timedelta(milliseconds=1))
    fixed_amount = quote.sell_amount if quote.fixed_side == "sell" else quote.buy_amount
    requote = QuoteForm(
        initial={
            "sell_currency": quote.sell_currency,
            "buy_currency": quote.buy_currency,
            "fixed_side": quote.fixed_side,
            "amount": money.format_amount(
                fixed_amount, quote.sell_currency if quote.fixed_side == "sell" else quote.buy_currency
            ),
        }
    )
    context = {
        "quote": quote,
        "expired": quote.is_expired(now),
        # Whole milliseconds left, for the countdown; the server decides expiry on accept.
        "remaining_ms": remaining_ms,
        "remaining_s": -(-remaining_ms // 1000),
        "requote": requote,
        "can_swap": request.membership.role in SWAP_ROLES,
        "swap": getattr(quote, "swap", None) if quote.status == "accepted" else None,
        # Shown, not enforced: the accept checks the wallet under its lock.
        "short_of_funds": balances_for(enterprise=quote.enterprise)[quote.sell_currency]
        < money.to_minor(quote.sell_amount, quote.sell_currency),
    }
    return render(request, "fx/quote.html", context)


@require_POST
@portal_member(roles=SWAP_ROLES)
def quote_accept(request: HttpRequest, public_id: str) -> HttpResponse:
    try:
        swap = services.quote_accept(enterprise=request.membership.enterprise, public_id=public_id)
    except services.QuoteNotFound:
        raise Http404("No such quote.") from None
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("fx:quote_detail", public_id=public_id)
    paid, received = f"{swap.sell_amount:,} {swap.sell_currency}", f"{swap.buy_amount:,} {swap.buy_currency}"
    messages.success(request, f"Swapped {paid} for {received} ({swap.public_id}).")
    return redirect(f"{reverse('fx:swaps')}#{swap.public_id}")


@portal_member()
def rates(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    current = selectors.rates_current()
    terms = selectors.terms_for(enterprise=request.membership.enterprise)
    legs = []
    for currency in selectors.NON_USD:
        history = selectors.rates_history(currency=currency, since=now - CHART_WINDOW)
        legs.append(
            {
                "currency": currency,
                "mid": current.legs.get(currency),
                "source": current.sources.get(currency),
                "chart": charts.line_chart([(at, mid) for at, mid, _ in history]),
            }
        )
    context = {
        "legs": legs,
        "published_at": current.published_at,
        "stale": current.is_stale(now=now),
        "pairs": [] if current.missing else selectors.indicative_rates(rates=current, spread_bps=terms.spread_bps),
        "terms": terms,
    }
    return render(request, "fx/rates.html", context)


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


@portal_member()
def swaps(request: HttpRequest) -> HttpResponse:
    form = SwapFilterForm(request.GET or None)
    filters = {}
    if form.is_valid():
        data = form.cleaned_data
        filters = {
            "currency": data["currency"] or None,
            "since": _day_start(data["date_from"]) if data["date_from"] else None,
            "until": _day_start(data["date_to"] + timedelta(days=1)) if data["date_to"] else None,
        }
    history = selectors.swaps_for(enterprise=request.membership.enterprise, **filters)
    if request.GET.get("format") == "csv":
        return exports.swaps_csv_response(history)
    query = request.GET.copy()
    query.pop("format", None)
    return render(request, "fx/swaps.html", {"form": form, "swaps": history[:500], "csv_query": query.urlencode()})

"""Writes on redemptions: request (maker), approve (checker), cancel, the payout, and the bank's answers.

See ``settlement.redemptions.models`` for the accounting model. The flow:

    request ─┬─ at or below the threshold ─────────────┬─ approve: wallet → in transit (one entry),
             └─ above: awaiting approval ── approve ──┘   then, on commit, a Celery dispatch asks the bank
                          └─ cancel (before approval)      for the payout (key derived from the redemption)

    payout.paid   → in transit → reserve, paid      payout.failed → in transit → wallet, failed
    paid, then payout.failed (the funds came back) → reserve → wallet, returned

Every transition locks the redemption row and checks its state first, so a
task run twice, a webhook delivered twice or out of order, changes nothing
twice. Calls to the bank never happen inside a database transaction.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from time import monotonic as time_monotonic
from time import sleep
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import close_old_connections, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from config import money
from config.db import run_in_transaction
from config.errors import DomainError
from corporates.models import AlertStatus, ApiKey, ApiScope, BankAccount, Enterprise, SanctionsAlert
from corporates.onboarding.banking import BankAccountHolderScreening, bank_account_require_payable
from corporates.onboarding.limits import limits_check_daily_redemption, limits_resolve
from corporates.permissions import (
    INITIATE_ROLES,
    RoleNotPermitted,
    approval_check,
    membership_of,
    role_require,
)
from corporates.services import enterprise_require_active
from settlement.ledger.models import Account, AccountKind, EntryKind
from settlement.ledger.selectors import platform_account, wallet_for
from settlement.ledger.services import Leg, ledger_post
from settlement.rails import RailsClient, RailsError, RailsIdempotencyError, RailsInvalidRequest, rails_client
from settlement.redemptions.facts import (
    redemption_for_payout,
    redemptions_claim_for_payout,
    redemptions_lock_for_settling,
    request_facts_lock,
)
from settlement.redemptions.models import LIVE_STATES, PayoutDestination, Redemption, RedemptionState
from settlement.webhooks_in import BankEvent

logger = logging.getLogger(__name__)

REQUEST_ROLES = INITIATE_ROLES
CANCEL_ROLES = frozenset({"maker", "admin"})


# --- errors ------------------------------------------------------------------------------


class RedemptionError(DomainError):
    code = "redemption_error"


class RedemptionInsufficientFunds(RedemptionError):
    code = "insufficient_funds"
    title = "The wallet does not hold enough tokens for this redemption."
    http_status = 422


class RedemptionNotFound(RedemptionError):
    code = "redemption_not_found"
    title = "No such redemption."
    http_status = 404


class RedemptionBankAccountNotFound(RedemptionError):
    code = "bank_account_not_found"
    title = "The enterprise has no such bank account."
    http_status = 404


class RedemptionNotAwaitingApproval(RedemptionError):
    code = "redemption_not_awaiting_approval"
    title = "Only a redemption awaiting approval can be approved."


class RedemptionNotCancellable(RedemptionError):
    code = "redemption_not_cancellable"
    title = "A redemption can be cancelled only before it is approved."


class PayoutUnknown(RedemptionError):
    code = "payout_unknown"
    title = "The bank reported a payout that no redemption made."


class PayoutMismatch(RedemptionError):
    code = "payout_mismatch"
    title = "The bank's payout does not match its redemption."


class PayoutContradiction(RedemptionError):
    code = "payout_contradiction"
    title = "The bank reported an outcome that contradicts the one already recorded."


# --- the deadline: end of the next Hong Kong working day after approval -----------------------


HONG_KONG = ZoneInfo("Asia/Hong_Kong")


@lru_cache(maxsize=16)
def _hk_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("HK", years=[year, year + 1])


def hk_working_day_next(day: date) -> date:
    """The first day after ``day`` that is neither a weekend nor a Hong Kong public holiday."""
    candidate = day + timedelta(days=1)
    while candidate.weekday() >= 5 or candidate in _hk_holidays(candidate.year):
        candidate += timedelta(days=1)
    return candidate


def redemption_deadline(*, approved_at: datetime) -> datetime:
    local_day = approved_at.astimezone(HONG_KONG).date()
    return datetime.combine(hk_working_day_next(local_day), time(23, 59, 59), tzinfo=HONG_KONG)


# --- actors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who acts: a portal member or an ERP API key (exactly one)."""

    user: AbstractBaseUser | None = None
    api_key: ApiKey | None = None

    def __post_init__(self) -> None:
        if (self.user is None) == (self.api_key is None):
            raise ValueError("An actor is a user or an API key, not both and not neither.")


def _actor_require(actor: Actor, *, enterprise_id: int, roles: frozenset[str]) -> None:
    if actor.api_key is not None:
        if actor.api_key.enterprise_id != enterprise_id or not actor.api_key.is_active:
            raise RoleNotPermitted("The API key belongs to another enterprise or is revoked.")
        return
    membership = membership_of(actor.user, with_enterprise=False)
    if membership.enterprise_id != enterprise_id:
        raise RoleNotPermitted("The redemption belongs to another enterprise.")
    role_require(membership=membership, roles=roles)


def _checker_require(redemption: Redemption, actor: Actor) -> None:
    """Four eyes: the approver is another person than the requester — behind an API key, the
    admin who created it — and holds a role that may approve, in the redemption's enterprise."""
    approval_check(
        maker=redemption.requested_by or redemption.requested_by_key,
        checker=actor.user or actor.api_key,
        enterprise_id=redemption.enterprise_id,
        scope=ApiScope.REDEMPTIONS,
    )


# --- request, approve, cancel ----------------------------------------------------------------


def hong_kong_midnight(now: datetime | None = None) -> datetime:
    """The start of today in Hong Kong: the daily redemption limit counts from it."""
    local = (now or timezone.now()).astimezone(HONG_KONG)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def redeemed_today(*, enterprise: Enterprise, currency: str, now: datetime | None = None) -> int:
    """Minor units of live redemptions requested since midnight in Hong Kong, in ``currency``."""
    start = hong_kong_midnight(now)
    total = (
        Redemption.objects.filter(
            enterprise=enterprise, currency=currency, state__in=LIVE_STATES, requested_at__gte=start
        ).aggregate(total=Sum("amount"))["total"]
        or 0
    )
    return int(total)


def _holder_screen_require(bank_account: BankAccount) -> None:
    if SanctionsAlert.objects.filter(party_ref=bank_account.public_id, status=AlertStatus.OPEN).exists():
        raise BankAccountHolderScreening()


def redemption_request(
    *,
    enterprise: Enterprise,
    amount: Decimal,
    currency: str,
    bank_account: BankAccount,
    actor: Actor,
) -> Redemption:
    """A maker asks to redeem ``amount`` at par to a verified account; approved at once below the threshold."""
    from corporates.sanctions import sanctions_screen_bank_account

    currency = money.parse_currency(currency)
    amount = money.parse_amount(str(amount), currency)
    minor = money.to_minor(amount, currency)
    if bank_account.enterprise_id != enterprise.pk:
        raise RedemptionBankAccountNotFound()
    _actor_require(actor, enterprise_id=enterprise.pk, roles=REQUEST_ROLES)
    # Re-screen the destination's holder against today's list, in its own
    # transaction: an alert it raises must survive our refusal below.
    sanctions_screen_bank_account(bank_account=bank_account)

    def request() -> Redemption:
        # One statement locks the enterprise row (serialising its requests, so
        # that two at once cannot both fit under the daily limit) and reads
        # everything the guards below check: see settlement.redemptions.facts.
        facts = request_facts_lock(
            enterprise_id=enterprise.pk,
            bank_account_id=bank_account.pk,
            currency=currency,
            since=hong_kong_midnight(),
        )
        enterprise_require_active(enterprise=enterprise, locked_status=facts.enterprise_status)
        if facts.bank_account_status is None:
            raise RedemptionBankAccountNotFound()
        bank_account.status, bank_account.currency = facts.bank_account_status, facts.bank_account_currency
        bank_account_require_payable(bank_account=bank_account, currency=currency, fresh=True)
        if facts.holder_alert_open:
            raise BankAccountHolderScreening()
        limits = limits_resolve(currency=currency, override=facts.limit_override)
        limits_check_daily_redemption(
            enterprise=enterprise,
            amount=amount,
            already_today=money.from_minor(facts.redeemed_today_minor, currency),
            currency=currency,
            limits=limits,
        )
        if facts.wallet_id is None or facts.in_transit_id is None:
            raise Account.DoesNotExist(f"No {currency} wallet of {enterprise.public_id}, or no in-transit account.")
        if facts.wallet_balance < minor:
            raise RedemptionInsufficientFunds()
        needs_approval = limits.needs_second_approval(amount)
        redemption = Redemption(
            enterprise=enterprise,
            amount=minor,
            currency=currency,
            bank_account=bank_account,
            requested_by=actor.user,
            requested_by_key=actor.api_key,
            needs_approval=needs_approval,
            state=RedemptionState.AWAITING_APPROVAL if needs_approval else RedemptionState.REQUESTED,
        )
        if needs_approval:
            redemption.save(force_insert=True)
        else:
            # Approved at once: the entry first, then the row is inserted as
            # approved, carrying it (one INSERT instead of an INSERT and an UPDATE).
            _burn(
                redemption,
                approver=None,
                debit_id=facts.wallet_id,
                in_transit_id=facts.in_transit_id,
                now=redemption.requested_at,
            )
            redemption.save(force_insert=True)
            transaction.on_commit(payouts_wake)
        return redemption

    return run_in_transaction(request)


def _burn(
    redemption: Redemption, *, approver: Actor | None, debit_id: int, in_transit_id: int, now: datetime | None = None
) -> None:
    """The approval's entry, wallet → in transit, and the fields that record it (not yet saved).

    Every redemption credits the platform's one in-transit account, so the
    entry's lock on it is the hot spot of the whole flow: everything else is
    read or computed first, and after the entry only one statement (the
    redemption's INSERT or UPDATE) runs before the commit releases the lock.
    """
    now = now or timezone.now()
    redemption.state = RedemptionState.PROCESSING
    redemption.approved_at = now
    redemption.deadline_at = redemption_deadline(approved_at=now)
    redemption.approved_by = approver.user if approver else None
    redemption.approved_by_key = approver.api_key if approver else None
    currency = redemption.currency
    result = ledger_post(
        idempotency_key=f"redemption:{redemption.public_id}:approve",
        kind=EntryKind.REDEMPTION,
        legs=[Leg(debit_id, currency, redemption.amount), Leg(in_transit_id, currency, -redemption.amount)],
        memo=f"Redemption {redemption.public_id}",
        metadata={"redemption": redemption.public_id},
    )
    redemption.debit_entry_id = result.entry_id


def _approve(redemption: Redemption, *, approver: Actor) -> None:
    """Burn (see ``_burn``) and record the approval of a redemption that awaited it; queue its payout."""
    debit = wallet_for(enterprise=redemption.enterprise, currency=redemption.currency)
    credit = platform_account(kind=AccountKind.REDEMPTION_IN_TRANSIT, currency=redemption.currency)
    _burn(redemption, approver=approver, debit_id=debit.id, in_transit_id=credit.id)
    Redemption.objects.filter(pk=redemption.pk).update(
        state=redemption.state,
        debit_entry_id=redemption.debit_entry_id,
        approved_at=redemption.approved_at,
        deadline_at=redemption.deadline_at,
        approved_by=redemption.approved_by,
        approved_by_key=redemption.approved_by_key,
    )
    transaction.on_commit(payouts_wake)


def redemption_approve(*, redemption: Redemption, actor: Actor) -> Redemption:
    """A checker (never the maker) approves a redemption above the threshold."""

    def approve() -> Redemption:
        locked = (
            Redemption.objects.select_for_update(of=("self",))
            .select_related("enterprise", "requested_by")
            .get(pk=redemption.pk)
        )
        if locked.state != RedemptionState.AWAITING_APPROVAL:
            raise RedemptionNotAwaitingApproval(f"Redemption {locked.public_id} is {locked.get_state_display()}.")
        _checker_require(locked, actor)
        enterprise_require_active(enterprise=Enterprise.objects.get(pk=locked.enterprise_id))
        bank_account_require_payable(bank_account=locked.bank_account, currency=locked.currency)
        _holder_screen_require(locked.bank_account)
        _approve(locked, approver=actor)
        return locked

    return run_in_transaction(approve)


def redemption_cancel(*, redemption: Redemption, actor: Actor) -> Redemption:
    """The enterprise withdraws a request before approval: no money has moved, none moves."""

    def cancel() -> Redemption:
        locked = Redemption.objects.select_for_update().get(pk=redemption.pk)
        _actor_require(actor, enterprise_id=locked.enterprise_id, roles=CANCEL_ROLES)
        if locked.state not in (RedemptionState.REQUESTED, RedemptionState.AWAITING_APPROVAL):
            raise RedemptionNotCancellable(f"Redemption {locked.public_id} is {locked.get_state_display()}.")
        locked.state = RedemptionState.CANCELLED
        locked.cancelled_at = timezone.now()
        locked.cancelled_by = actor.user
        locked.save(update_fields=["state", "cancelled_at", "cancelled_by"])
        return locked

    return run_in_transaction(cancel)


# --- the payout -------------------------------------------------------------------------------


def payout_enqueue(*, redemption_id: int, countdown: float | None = None) -> None:
    """Queue the payout task of one redemption (a retry, the sweep); if the broker is down, the sweep finds it later."""
    from settlement.tasks import redemption_payout_task

    try:
        redemption_payout_task.apply_async(
            kwargs={"redemption_id": redemption_id}, queue=settings.REDEMPTION_PAYOUT_QUEUE, countdown=countdown
        )
    except Exception:
        logger.exception("could not queue the payout of redemption %s; the sweep will", redemption_id)


def _wake_flag() -> str:
    # Per queue: the dispatch it stands for runs on the workers of that queue.
    return f"settlement:payouts:dispatch-queued:{settings.REDEMPTION_PAYOUT_QUEUE}"


def payouts_wake() -> None:
    """After an approval commits: make sure a payout dispatch looks for work after this moment.

    A dispatch (``payouts_dispatch``) pays out every approved redemption that
    has no payout, not only the one that woke it, and keeps looking while
    work comes in. A flag in Redis says "a dispatch is queued or running and
    will look again": while it is up, an approval sends no message of its own
    (a Celery message was most of an approval's CPU). The dispatch lowers it
    only before its last look; an approval that commits after that look finds
    it down and queues the next dispatch, so no approval is left behind. The
    flag expires (``REDEMPTION_PAYOUT_WAKE_TTL_S``; a running dispatch renews
    it) in case its dispatch died; the sweep remains the last resort. With no
    shared Redis every call queues a dispatch, and with eager tasks (tests)
    that dispatch runs here and does not linger.
    """
    from celery import current_app

    from config import flags
    from settlement.tasks import redemption_payouts_dispatch_task

    eager = current_app.conf.task_always_eager
    try:
        if flags.flags_shared() and not eager and not flags.flag_raise(_wake_flag(), ttl_seconds=_flag_ttl()):
            return  # a dispatch is queued or running, and will find this redemption
        redemption_payouts_dispatch_task.apply_async(
            kwargs={"linger_s": 0, "concurrency": 1} if eager else {}, queue=settings.REDEMPTION_PAYOUT_QUEUE
        )
    except Exception:
        logger.exception("could not queue a payout dispatch; the sweep will")


def _flag_ttl() -> int:
    return settings.REDEMPTION_PAYOUT_WAKE_TTL_S


def payouts_dispatch(
    *, batch_size: int | None = None, linger_s: float | None = None, concurrency: int | None = None
) -> int:
    """Create the payout of every approved redemption that has none, while they come; the number created.

    Claims them a batch at a time (``redemptions_claim_for_payout``: one
    statement, disjoint between dispatchers running at once) and asks the
    bank for each as ``redemption_payout_create`` does, with the same
    Idempotency-Key. When none is left it looks again every
    ``REDEMPTION_PAYOUT_POLL_S`` for ``linger_s`` (default
    ``REDEMPTION_PAYOUT_LINGER_S``), holding the wake flag up meanwhile, so
    that a steady flow of approvals is served by one dispatch and no message
    each; then it lowers the flag and looks one last time (``payouts_wake``).
    """
    from config import flags

    shared = flags.flags_shared()
    flag = _wake_flag()
    linger = settings.REDEMPTION_PAYOUT_LINGER_S if linger_s is None else linger_s
    if not shared:
        linger = 0  # every approval queues its own dispatch: waiting for the next one serves nobody
    concurrency = concurrency or settings.REDEMPTION_PAYOUT_CONCURRENCY
    made, idle_since, started = 0, None, time_monotonic()
    while True:
        if time_monotonic() - started > settings.REDEMPTION_PAYOUT_DISPATCH_MAX_S:
            # Under a steady flow a dispatch would never stop, and the task's
            # time limit would kill it mid-batch: hand over to a fresh one.
            if shared:
                flags.flag_lower(flag)
            payouts_wake()
            return made
        if shared:
            flags.flag_renew(flag, ttl_seconds=_flag_ttl())  # running: approvals need send nothing
        claimed = _claim_batch(batch_size)
        made += _payouts_make(claimed, concurrency)
        if claimed:
            idle_since = None
            continue
        idle_since = idle_since if idle_since is not None else time_monotonic()
        if time_monotonic() - idle_since < linger:
            sleep(settings.REDEMPTION_PAYOUT_POLL_S)
            continue
        if not shared:
            return made
        flags.flag_lower(flag)  # then the last look: see payouts_wake
        claimed = _claim_batch(batch_size)
        made += _payouts_make(claimed, concurrency)
        if not claimed or not flags.flag_raise(flag, ttl_seconds=_flag_ttl()):
            return made  # nothing came, or a newer dispatch is queued and takes over
        idle_since = None


def _claim_batch(batch_size: int | None) -> list[Redemption]:
    now = timezone.now()
    return redemptions_claim_for_payout(
        now=now,
        until=now + timedelta(seconds=settings.REDEMPTION_PAYOUT_CLAIM_S),
        limit=batch_size or settings.REDEMPTION_PAYOUT_BATCH,
    )


def _payouts_make(claimed: list[Redemption], concurrency: int) -> int:
    """The payouts of claimed redemptions, ``concurrency`` bank calls at a time; the number made.

    A bank outage hands a redemption to its own task (retried with backoff);
    anything else is logged and its claim expires for the sweep. Calls run in
    this process's payout threads (each with its own database connection),
    since one bank round trip at a time is slower than approvals arrive;
    ``concurrency`` 1 runs them here, in the caller's connection and transaction.
    """
    if concurrency <= 1 or len(claimed) <= 1:
        return sum(_payout_make_logged(redemption) for redemption in claimed)
    return sum(_payout_pool(concurrency).map(_payout_make_pooled, claimed))


def _payout_make_logged(redemption: Redemption) -> int:
    try:
        _payout_make(redemption)
        return 1
    except RailsError as exc:
        if not exc.retryable:
            logger.exception("the bank refused the payout of %s; left for the sweep", redemption.public_id)
            return 0
        logger.warning("payout of %s: %s; its own task retries it", redemption.public_id, exc)
        payout_enqueue(redemption_id=redemption.pk, countdown=1)
    except Exception:
        logger.exception("payout of %s failed; its claim expires for the sweep", redemption.public_id)
    return 0


def _payout_make_pooled(redemption: Redemption) -> int:
    # A pool thread keeps its connection between payouts; drop it if it broke or aged out.
    close_old_connections()
    return _payout_make_logged(redemption)


_pools: dict[int, ThreadPoolExecutor] = {}


def _payout_pool(size: int) -> ThreadPoolExecutor:
    with _clients_lock:
        pool = _pools.get(size)
        if pool is None:
            pool = _pools[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="payout")
        return pool


_clients: dict[tuple, RailsClient] = {}
_clients_lock = threading.Lock()


def _rails() -> RailsClient:
    """One client per process and configuration, kept open (it is thread-safe).

    Building an httpx client loads a TLS context (tens of milliseconds); the
    payout path runs once per redemption, so it reuses the client and its
    kept-alive connections instead.
    """
    key = (
        settings.BANK_RAILS_BASE_URL,
        settings.BANK_RAILS_SECRET_KEY,
        settings.BANK_RAILS_ACCOUNT_ID,
        settings.BANK_RAILS_TIMEOUT_S,
        settings.BANK_RAILS_CONNECT_TIMEOUT_S,
        settings.BANK_RAILS_MAX_RETRIES,
        settings.BANK_RAILS_RETRY_BACKOFF_S,
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = rails_client()
        return client


def _destination_for(redemption: Redemption, rails: RailsClient) -> str:
    """The bank's id for the verified account, registering it there once (idempotent on its public id).

    ``redemption`` comes from ``redemption_for_payout``, with its bank account's details.
    """
    if redemption.destination_id is not None:
        return redemption.destination_id
    registered = rails.external_account_create(
        account_number=redemption.bank_account_number,
        currency=redemption.bank_account_currency,
        account_holder_name=redemption.bank_account_holder_name,
        idempotency_key=f"hl-bank-account-{redemption.bank_account_public_id}",
        metadata={"bank_account": redemption.bank_account_public_id, "enterprise": redemption.enterprise_public_id},
    )
    destination, _ = PayoutDestination.objects.get_or_create(
        bank_account_id=redemption.bank_account_id, defaults={"external_account_id": registered.id}
    )
    return destination.external_account_id


def redemption_payout_create(*, redemption_id: int) -> Redemption:
    """Ask the bank to pay the redemption out; record the payout id. Safe to run any number of times.

    Every attempt sends the same Idempotency-Key, so the bank makes one payout
    however often this runs, including after a crash between the bank's
    answer and our record of it. A refusal by the bank (bad destination,
    custodian short of funds) fails the redemption and returns the tokens;
    an outage raises a retryable ``RailsError`` for the task to retry.
    """
    redemption = redemption_for_payout(redemption_id=redemption_id)
    if redemption.state != RedemptionState.PROCESSING or redemption.payout_id:
        return redemption
    with connection.cursor() as cursor:  # one plain statement; the ORM's would cost more than the round trip
        cursor.execute(
            "UPDATE settlement_redemption SET payout_attempts = payout_attempts + 1 WHERE id = %s", [redemption.pk]
        )
    return _payout_make(redemption)


def _payout_make(redemption: Redemption) -> Redemption:
    """The payout request and its record, for a redemption read by ``redemption_for_payout`` (or claimed)."""
    rails = _rails()
    try:
        destination = _destination_for(redemption, rails)
        payout = rails.payout_create(
            amount_minor=redemption.amount,  # the amount redeemed, to the minor unit: no fee line
            currency=redemption.currency,
            destination=destination,
            idempotency_key=redemption.payout_idempotency_key,
            metadata={"redemption": redemption.public_id, "enterprise": redemption.enterprise_public_id},
            description=f"Harbourline redemption {redemption.public_id}",
        )
    except RailsInvalidRequest as exc:
        if isinstance(exc, RailsIdempotencyError):
            raise  # our key with other parameters: a bug to look at, never a reason to return funds
        return _fail(
            redemption_id=redemption.pk,
            code=exc.stripe_code or exc.code,
            message=f"The bank refused the payout: {exc.message}",
        )
    _test_crash_point()
    if payout.amount_minor != redemption.amount or payout.currency != redemption.currency:
        raise PayoutMismatch(f"Payout {payout.id} is {payout.amount_minor} {payout.currency}.")
    # One conditional UPDATE is the whole record: it sets the id only where none
    # is set yet (the bank's payout.paid may have got here first, with the same id).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE settlement_redemption SET payout_id = %s WHERE id = %s AND payout_id IS NULL",
            [payout.id, redemption.pk],
        )
        recorded = cursor.rowcount == 1
    if recorded:
        redemption.payout_id = payout.id
    else:
        redemption.refresh_from_db(fields=["payout_id", "state"])
    return redemption


def _test_crash_point() -> None:
    """Tests only: die here, after the bank made the payout and before we recorded it."""
    if settings.REDEMPTION_TEST_CRASH_AFTER_PAYOUT:
        os._exit(70)


def redemptions_awaiting_payout(*, older_than: timedelta) -> list[int]:
    """Approved redemptions with no payout recorded for a while: their task was lost or crashed."""
    cutoff = timezone.now() - older_than
    return list(
        Redemption.objects.filter(
            state=RedemptionState.PROCESSING, payout_id__isnull=True, approved_at__lt=cutoff
        ).values_list("id", flat=True)[:500]
    )


# --- the bank's answers -------------------------------------------------------------------------


def _redemption_for_payout(event: BankEvent) -> Redemption:
    """The redemption a payout event is about, locked (call inside a transaction) and checked against it.

    Found and locked in one query: by the payout id we recorded, or, when the
    bank answered before we recorded it (a crash, or just a fast bank), by
    the redemption our metadata names; with it, the ids of the accounts the
    second entry needs (``redemptions_lock_for_settling``).
    """
    payout = event.object
    payout_id = str(payout.get("id") or "")
    public_id = str((payout.get("metadata") or {}).get("redemption") or "")
    candidates = redemptions_lock_for_settling(payout_id=payout_id, public_id=public_id)
    # The payout id we recorded wins over the metadata (as it did when looked up one after the other).
    redemption = next((r for r in candidates if payout_id and r.payout_id == payout_id), None) or next(
        iter(candidates), None
    )
    if redemption is None:
        raise PayoutUnknown(f"Payout {payout_id} ({event.type}) matches no redemption.", payout=payout_id)
    if int(payout.get("amount") or -1) != redemption.amount or str(payout.get("currency", "")).upper() != (
        redemption.currency
    ):
        raise PayoutMismatch(
            f"Payout {payout_id} is {payout.get('amount')} {payout.get('currency')}; "
            f"redemption {redemption.public_id} is {redemption.amount} {redemption.currency}.",
            payout=payout_id,
        )
    if redemption.payout_id and redemption.payout_id != payout_id:
        raise PayoutContradiction(
            f"Redemption {redemption.public_id} was paid by {redemption.payout_id}, not {payout_id}.", payout=payout_id
        )
    return redemption


def _settle(locked: Redemption, *, payout_id: str, paid: bool, code: str = "", message: str = "") -> None:
    """The second entry: in transit → reserve (paid) or → wallet (failed); the state that goes with it.

    The entry locks the platform's in-transit account (and, when paid, its
    reserve), which every redemption shares: it is written last, after the
    enterprise's event, so that only one UPDATE separates it from the commit
    that releases those locks. All of it is one transaction: a refusal of
    the entry rolls the event back too.
    """
    # ``locked`` comes from redemptions_lock_for_settling, with the account ids.
    if paid:
        credit_id, kind, suffix = locked.reserve_id, EntryKind.REDEMPTION_PAID, "paid"
    else:
        credit_id, kind, suffix = locked.wallet_id, EntryKind.REDEMPTION_RETURNED, "returned"
    if locked.in_transit_id is None or credit_id is None:
        raise Account.DoesNotExist(f"An account to settle {locked.public_id} is missing.")
    now = timezone.now()
    locked.payout_id = locked.payout_id or payout_id or None
    if paid:
        locked.state, locked.paid_at = RedemptionState.PAID, now
    else:
        locked.state, locked.failed_at = RedemptionState.FAILED, now
        locked.failure_code, locked.failure_message = code[:64], message[:500]
    _emit(locked)
    result = ledger_post(
        idempotency_key=f"redemption:{locked.public_id}:{suffix}",
        kind=kind,
        legs=[
            Leg(locked.in_transit_id, locked.currency, locked.amount),
            Leg(credit_id, locked.currency, -locked.amount),
        ],
        memo=f"Redemption {locked.public_id} {suffix}",
        metadata={"redemption": locked.public_id, "payout": payout_id},
    )
    locked.settle_entry_id = result.entry_id
    _settled_record(locked)


def _settled_record(locked: Redemption) -> None:
    """Write the settled state: one plain UPDATE, the last statement before the commit (it runs
    while the shared accounts are locked, so the ORM's compiling it on every call is not worth it)."""
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE settlement_redemption SET settle_entry_id = %s, payout_id = %s, state = %s,"
            " paid_at = %s, failed_at = %s, failure_code = %s, failure_message = %s WHERE id = %s",
            [
                locked.settle_entry_id,
                locked.payout_id,
                locked.state,
                adapt(locked.paid_at),
                adapt(locked.failed_at),
                locked.failure_code,
                locked.failure_message,
                locked.pk,
            ],
        )


def _emit(redemption: Redemption) -> None:
    from corporates.webhooks import event_emit

    data = {
        "redemption": redemption.public_id,
        "state": redemption.state,
        "amount": money.Amount(redemption.amount, redemption.currency).to_json(),
        "bank_account": redemption.bank_account_public_id,
        "payout": redemption.payout_id,
    }
    if redemption.state in (RedemptionState.FAILED, RedemptionState.RETURNED):
        data["failure"] = {"code": redemption.failure_code, "message": redemption.failure_message}
    if redemption.state == RedemptionState.RETURNED:
        data["paid_at"] = redemption.paid_at.isoformat()
        data["returned_at"] = redemption.returned_at.isoformat()
    event_emit(enterprise_id=redemption.enterprise_id, type=f"redemption.{redemption.state}", data=data)


def payout_paid(*, event: BankEvent) -> Redemption:
    """``payout.paid``: the fiat reached the enterprise's bank. Once; repeats change nothing."""

    def paid() -> Redemption:
        locked = _redemption_for_payout(event)
        if locked.state in (RedemptionState.PAID, RedemptionState.RETURNED):
            # Returned: this paid is a late or repeated delivery of what came before the return.
            return locked
        if locked.state != RedemptionState.PROCESSING:
            raise PayoutContradiction(f"Redemption {locked.public_id} is {locked.state}; the bank says paid.")
        _settle(locked, payout_id=str(event.object["id"]), paid=True)
        return locked

    return run_in_transaction(paid)


def payout_failed(*, event: BankEvent) -> Redemption:
    """``payout.failed`` (or ``canceled``): the tokens go back to the wallet with the bank's reason.

    Before ``payout.paid`` the tokens come back from in transit (``failed``).
    After it, the beneficiary's bank has sent the funds back (Stripe reports
    ``payout.failed`` for a payout it had reported paid): the fiat is in the
    reserve again, and ``_return`` re-mints the tokens (``returned``). A
    repeat of either is a no-op; ``payout.canceled`` after paid contradicts
    the bank's own record (a paid payout cannot be cancelled) and is alerted.
    """
    payout = event.object
    code = str(payout.get("failure_code") or ("canceled" if event.type == "payout.canceled" else "failed"))
    message = str(payout.get("failure_message") or "The bank could not complete the payout.")

    def failed() -> Redemption:
        locked = _redemption_for_payout(event)
        if locked.state == RedemptionState.FAILED:
            return locked
        if event.type == "payout.failed":
            if locked.state == RedemptionState.RETURNED:
                return locked
            if locked.state == RedemptionState.PAID:
                _return(locked, code=code, message=message)
                return locked
        if locked.state != RedemptionState.PROCESSING:
            raise PayoutContradiction(f"Redemption {locked.public_id} is {locked.state}; the bank says failed.")
        _settle(locked, payout_id=str(payout["id"]), paid=False, code=code, message=message)
        return locked

    return run_in_transaction(failed)


def _return(locked: Redemption, *, code: str, message: str) -> None:
    """A paid payout came back: one entry, reserve → wallet, re-mints the tokens; the state and its event.

    ``locked`` comes from ``redemptions_lock_for_settling`` (row locked, with
    the account ids), inside the caller's transaction: the entry, the state
    and the enterprise's event commit together or not at all.

    The wallet is credited even when the enterprise is frozen. A deposit for a
    frozen enterprise is held in suspense because the fiat may belong to
    someone the platform must not serve and can still be sent back to its
    sender; here the fiat is the enterprise's own redemption, which the bank
    has just failed to deliver to the enterprise's only verified account, and
    the issuer owes it the tokens again. The ledger refuses debits of a frozen
    enterprise's wallet, never credits (the same holds for ``payout.failed``
    before paid, which has always returned the tokens to the wallet): the
    tokens sit in the frozen wallet until the back office decides, and the
    ledger and the custodian agree at once, with no suspense to reconcile.
    """
    if locked.reserve_id is None or locked.wallet_id is None:
        raise Account.DoesNotExist(f"An account to return {locked.public_id} to is missing.")
    locked.state, locked.returned_at = RedemptionState.RETURNED, timezone.now()
    locked.failure_code, locked.failure_message = code[:64], message[:500]
    _emit(locked)
    result = ledger_post(
        idempotency_key=f"redemption:{locked.public_id}:reversed",
        kind=EntryKind.REDEMPTION_REVERSED,
        legs=[
            Leg(locked.reserve_id, locked.currency, locked.amount),
            Leg(locked.wallet_id, locked.currency, -locked.amount),
        ],
        memo=f"Redemption {locked.public_id} returned by the bank ({locked.failure_code})",
        metadata={"redemption": locked.public_id, "payout": locked.payout_id, "failure_code": locked.failure_code},
    )
    locked.return_entry_id = result.entry_id
    Redemption.objects.filter(pk=locked.pk).update(
        state=locked.state,
        returned_at=locked.returned_at,
        return_entry_id=locked.return_entry_id,
        failure_code=locked.failure_code,
        failure_message=locked.failure_message,
    )


def _fail(*, redemption_id: int, code: str, message: str) -> Redemption:
    """The bank refused to make the payout at all: return the tokens now."""

    def fail() -> Redemption:
        (locked,) = redemptions_lock_for_settling(pk=redemption_id)
        if locked.state != RedemptionState.PROCESSING or locked.payout_id:
            return locked
        _settle(locked, payout_id="", paid=False, code=code, message=message)
        return locked

    return run_in_transaction(fail)

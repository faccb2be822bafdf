"""The cut: which obligations a batch takes, fixed as a predicate instead of a rewrite of every row.

A batch used to claim its obligations with ``UPDATE … SET status =
'in_batch'`` and rewrite every one of them again when it settled them. On a
million obligations each rewrite is the batch's largest cost (~4–6 s of the
skewed benchmark each), so a batch now writes each obligation once, when it
completes, and takes them by a cut fixed when it starts netting:

    pending, approved where it had to be, value date ≤ the batch's,
    id ≤ ``cut_id`` (the highest obligation id at the cut),
    and not in the range of a batch still running at that moment
    (``cut_exclusions``: that batch's cut and value date).

The set this predicate selects cannot change until the batch completes:

* no new obligation falls under it: writers of obligations hold
  ``writers_guard()`` (a shared advisory lock) for their whole transaction,
  and ``cut_take()`` takes the same lock exclusively, so the cut waits for
  every insert in flight and every later insert gets a higher id;
* none leaves it or joins it: cancel refuses an obligation a running batch
  took, and approve one it would take once approved (``batch_holding``),
  under the same shared lock, so that a cut cannot slip in between their
  check and their write;
* batches do not overlap: a batch running at another's cut is excluded from
  it, whatever it later settles, rolls or fails.

While a batch runs, its obligations are stored as pending and read as
``in_batch`` (``with_running_batches``, ``in_batch_q``): the stored status changes once,
to settled, failed or pending again (rolled), when the batch completes.
SQLite (the embedded default) has one writer at a time, which gives the same
order without the advisory lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import connection
from django.db.models import Q

from config.errors import DomainError
from settlement.netting.models import BatchStatus, NettingBatch

# pg_advisory_xact_lock key of the cut (an arbitrary constant: "HLNETCUT" in ASCII).
TAKE_LOCK_KEY = 0x484C4E4554435554

RUNNING = (BatchStatus.NETTING, BatchStatus.SETTLING)


class NettingInProgress(DomainError):
    code = "netting_in_progress"
    title = "A netting batch that covers this obligation is running; try again once it completes (seconds)."
    http_status = 409


@dataclass(frozen=True)
class Cut:
    batch_id: int
    batch_public_id: str
    cut_id: int
    value_date: date
    exclusions: tuple[tuple[int, date], ...] = ()

    @classmethod
    def of(cls, batch: NettingBatch) -> Cut:
        return cls(
            batch_id=batch.pk,
            batch_public_id=batch.public_id,
            cut_id=batch.cut_id,
            value_date=batch.value_date,
            exclusions=tuple((int(cut), date.fromisoformat(day)) for cut, day in batch.cut_exclusions),
        )

    def sql(self, alias: str = "o") -> tuple[str, list]:
        """The predicate over ``alias`` (an obligation row) and its parameters, in portable SQL."""
        o = alias
        clauses = [
            f"{o}.status = 'pending'",
            f"{o}.needs_approval = %s",
            f"{o}.value_date <= %s",
            f"{o}.id <= %s",
        ]
        params: list = [False, self.value_date, self.cut_id]
        for cut_id, value_date in self.exclusions:
            clauses.append(f"NOT ({o}.id <= %s AND {o}.value_date <= %s)")
            params += [cut_id, value_date]
        return " AND ".join(clauses), params

    def q(self) -> Q:
        """The same predicate as an ORM filter."""
        q = Q(status="pending", needs_approval=False, value_date__lte=self.value_date, id__lte=self.cut_id)
        for cut_id, value_date in self.exclusions:
            q &= ~Q(id__lte=cut_id, value_date__lte=value_date)
        return q

    def takes(self, obligation, *, once_approved: bool = False) -> bool:
        """Whether the batch, still running, holds this obligation (stored as pending), or would once approved."""
        return (
            obligation.status == "pending"
            and (once_approved or not obligation.needs_approval)
            and obligation.value_date <= self.value_date
            and obligation.id <= self.cut_id
            and not any(obligation.id <= c and obligation.value_date <= d for c, d in self.exclusions)
        )


def writers_guard() -> None:
    """Hold off a cut until this transaction (an insert, cancel or approval of obligations) commits."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [TAKE_LOCK_KEY])


def cut_take(batch: NettingBatch) -> None:
    """Fix the batch's cut (in the caller's transaction, with the batch row locked); the caller saves it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Waits for every writer in flight; until commit, none starts.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TAKE_LOCK_KEY])
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM settlement_obligation")
        (batch.cut_id,) = cursor.fetchone()
    running = (
        NettingBatch.objects.filter(status__in=RUNNING, cut_id__isnull=False)
        .exclude(pk=batch.pk)
        .order_by("id")
        .values_list("cut_id", "value_date")
    )
    batch.cut_exclusions = [[cut_id, value_date.isoformat()] for cut_id, value_date in running]


def cuts_running() -> list[Cut]:
    """The cuts of the batches running now (usually none, at most a few)."""
    return [Cut.of(b) for b in NettingBatch.objects.filter(status__in=RUNNING, cut_id__isnull=False).order_by("id")]


def batch_holding(obligation_id: int, *, once_approved: bool = False) -> Cut | None:
    """The running batch that took the obligation (or would take it, once approved): call under ``writers_guard``."""
    cuts = cuts_running()
    if not cuts:
        return None
    from settlement.obligations.models import Obligation

    row = Obligation.objects.only("id", "status", "needs_approval", "value_date").get(pk=obligation_id)
    return next((cut for cut in cuts if cut.takes(row, once_approved=once_approved)), None)


def with_running_batches(obligations):
    """The obligations as read: each held by a running batch gets ``held_by`` (its cut), and reads as in_batch."""
    obligations = list(obligations)
    cuts = cuts_running() if obligations else []
    for obligation in obligations:
        obligation.held_by = next((cut for cut in cuts if cut.takes(obligation)), None)
    return obligations


def in_batch_q(cuts: list[Cut]) -> Q:
    """Obligations held by a running batch (read as in_batch); matches nothing when none runs."""
    q = Q(pk__in=[])
    for cut in cuts:
        q |= cut.q()
    return q

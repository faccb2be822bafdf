"""Netting batches: take the due obligations at a cut-off, net each pair per currency, settle the nets.

Accounting model: see settlement.netting.models. In short, the obligations a
batch takes are netted per unordered pair {a < b} and currency; each non-zero
net is one journal entry, net payer's wallet → net payee's wallet, posted
through the ledger's batch path (settlement.ledger.batch) with the
idempotency key ``netting:<batch>:<a>:<b>:<currency>``. Nothing here writes
an entry or a balance itself.

Steps, each its own transaction that first locks the batch row and checks
the state, so that a worker killed anywhere leaves either the state before
the step or the state after it, and a step run twice does nothing twice:

1. open → netting (persisted, so that an operator sees the batch working).
2. The cut (settlement.netting.cut): a short transaction fixes which
   obligations the batch takes — pending, approved, due, with an id up to
   the highest at this moment, outside the range of any batch still running
   (two cut-offs that fire together never take the same obligation). Nothing
   is written to the obligations: until the batch completes, cancel and
   approve refuse them, and they read as in_batch.
3. netting → settling: aggregate what the cut takes per pair and currency
   (one read), and write each participant's multilateral position.
4. settling: liquidity passes. Each pass locks the wallets of the pending
   pairs' parties in id order, picks every pair whose net payer can pay now
   (its pending outgoing nets, smallest first, up to its balance), posts them
   all, and marks those pairs settled, entries and pair rows in one commit.
   Passes repeat while one settles something: a payer may need what it
   received in an earlier pass.
5. settling → completed: each obligation the batch took is written once:
   those of pairs still unpaid roll back to pending with the reason (or
   fail, after too many rolls or days past the value date), every other one
   is settled (one scan, however many passes), and the report's figures are
   written.

Everything is set-based SQL over the batch's rows: no obligation or pair is
ever loaded as an object, and no query runs per obligation or per pair.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from config import money
from config.db import run_in_transaction
from config.errors import DomainError
from config.money import Amount
from corporates.models import Enterprise
from settlement.ledger.batch import ledger_post_transfers
from settlement.ledger.models import EntryKind
from settlement.netting.cut import Cut, cut_take, cuts_running
from settlement.netting.models import BatchStatus, NettingBatch

logger = logging.getLogger(__name__)


class BatchNotFound(DomainError):
    code = "batch_not_found"
    title = "No such netting batch."
    http_status = 404


# --- the netting arithmetic, shared by batches and previews ----------------------------

# Nets obligations per unordered pair {a < b} and currency: a_owes is what a
# owes b, b_owes what b owes a. ``{source}`` is any row source with payer_id,
# payee_id, currency and amount: the rows a batch claims, or the pending rows
# a preview looks at. Portable SQL (PostgreSQL and SQLite).
_PAIR_AGGREGATE = """
SELECT o.currency AS currency,
       CASE WHEN o.payer_id < o.payee_id THEN o.payer_id ELSE o.payee_id END AS party_a_id,
       CASE WHEN o.payer_id < o.payee_id THEN o.payee_id ELSE o.payer_id END AS party_b_id,
       SUM(CASE WHEN o.payer_id < o.payee_id THEN o.amount ELSE 0 END) AS a_owes,
       SUM(CASE WHEN o.payer_id > o.payee_id THEN o.amount ELSE 0 END) AS b_owes,
       COUNT(*) AS obligation_count
  FROM {source} o
 GROUP BY 1, 2, 3
"""

# An obligation's pair keys, to join obligations to pair rows with a hash join.
_OBLIGATION_PAIR_JOIN = (
    "o.currency = t.currency"
    " AND (CASE WHEN o.payer_id < o.payee_id THEN o.payer_id ELSE o.payee_id END) = t.party_a_id"
    " AND (CASE WHEN o.payer_id < o.payee_id THEN o.payee_id ELSE o.payer_id END) = t.party_b_id"
)


def _is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _temp_table(cursor, name: str, select_sql: str, params: list[Any]) -> None:
    """A scratch table for one step (dropped at commit on PostgreSQL, and by ``_drop_temp_table``).

    Dropped first as well: when a caller's transaction holds several steps
    (tests, a shell), the previous step's table is still there.
    """
    cursor.execute(f"DROP TABLE IF EXISTS {name}")
    if _is_postgresql():
        cursor.execute(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS {select_sql}", params)
        cursor.execute(f"ANALYZE {name}")
    else:
        cursor.execute(f"CREATE TEMP TABLE {name} AS {select_sql}", params)


def _drop_temp_table(cursor, name: str) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {name}")


# --- open and run ------------------------------------------------------------------------


def batch_open(*, trigger: str = "manual", cutoff_at: datetime | None = None) -> NettingBatch:
    """Open a batch for a cut-off. It takes what is due on the cut-off's (Hong Kong) date."""
    cutoff_at = cutoff_at or timezone.now()
    return NettingBatch.objects.create(
        trigger=trigger[:100],
        cutoff_at=cutoff_at,
        value_date=timezone.localdate(cutoff_at),
        created_at=timezone.now(),
    )


def batch_run(*, batch_id: int) -> NettingBatch:
    """Run (or resume) a batch to completion. Safe to call again at any point, from any worker."""
    if not NettingBatch.objects.filter(pk=batch_id).exists():
        raise BatchNotFound()
    run_in_transaction(lambda: _attempt(batch_id))
    run_in_transaction(lambda: _start_netting(batch_id))
    run_in_transaction(lambda: _cut(batch_id))
    run_in_transaction(lambda: _net(batch_id))
    run_in_transaction(lambda: _multilateral_pay_in(batch_id))
    _test_pause("between_pay_in_and_pay_out")
    run_in_transaction(lambda: _multilateral_pay_out(batch_id))
    while run_in_transaction(lambda: _settle_pass(batch_id)):
        _test_pause("between_passes")
    run_in_transaction(lambda: _complete(batch_id))
    return NettingBatch.objects.get(pk=batch_id)


def batches_resume() -> list[int]:
    """Finish every batch a dead worker left unfinished (what a cut-off does first)."""
    unfinished = list(
        NettingBatch.objects.exclude(status=BatchStatus.COMPLETED).order_by("id").values_list("id", flat=True)
    )
    for batch_id in unfinished:
        batch_run(batch_id=batch_id)
    return unfinished


def batch_cutoff(*, trigger: str = "schedule") -> NettingBatch:
    """A cut-off: finish what is unfinished, then open and run a new batch."""
    batches_resume()
    # Events whose task was never queued (broker down at the batch's commit) go out now.
    for batch_id in NettingBatch.objects.filter(
        status=BatchStatus.COMPLETED, events_emitted_at__isnull=True
    ).values_list("id", flat=True)[:10]:
        batch_events_emit(batch_id=batch_id)
    batch = batch_open(trigger=trigger)
    return batch_run(batch_id=batch.pk)


def _locked(batch_id: int) -> NettingBatch:
    return NettingBatch.objects.select_for_update().get(pk=batch_id)


def _big_step(cursor) -> None:
    """Memory for this transaction's sorts and hashes (a million rows), on PostgreSQL.

    With the server's default work_mem (4 MB) the aggregation per pair and the
    joins of a large batch spill to disk. SET LOCAL ends with the transaction.
    """
    if _is_postgresql():
        cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.NETTING_WORK_MEM])


def _attempt(batch_id: int) -> None:
    batch = _locked(batch_id)
    if batch.status != BatchStatus.COMPLETED:
        batch.attempts += 1
        batch.save(update_fields=["attempts"])


def _start_netting(batch_id: int) -> None:
    batch = _locked(batch_id)
    if batch.status == BatchStatus.OPEN:
        batch.status = BatchStatus.NETTING
        batch.netting_at = timezone.now()
        batch.save(update_fields=["status", "netting_at"])


def _record_phase(batch: NettingBatch, phase: str, seconds: float) -> None:
    batch.phase_seconds[phase] = round(batch.phase_seconds.get(phase, 0) + seconds, 3)


def _cut(batch_id: int) -> None:
    """Fix which obligations the batch takes (settlement.netting.cut). A short transaction of its own."""
    batch = _locked(batch_id)
    if batch.status != BatchStatus.NETTING or batch.cut_id is not None:
        return
    started = time.perf_counter()
    cut_take(batch)
    _record_phase(batch, "cut", time.perf_counter() - started)
    batch.save(update_fields=["cut_id", "cut_exclusions", "phase_seconds"])


def _net(batch_id: int) -> None:
    """netting → settling: aggregate what the cut takes per pair and currency, write the positions. One transaction.

    The obligations are only read: they are written once, when the batch completes.
    """
    batch = _locked(batch_id)
    if batch.status != BatchStatus.NETTING:
        return
    started = time.perf_counter()
    take, take_params = Cut.of(batch).sql()
    with connection.cursor() as cursor:
        _big_step(cursor)
        source = f"(SELECT o.payer_id, o.payee_id, o.currency, o.amount FROM settlement_obligation o WHERE {take})"
        cursor.execute(
            "INSERT INTO settlement_nettingpair"
            " (batch_id, currency, party_a_id, party_b_id, a_owes, b_owes, obligation_count, status, reason)"
            " SELECT %s, p.currency, p.party_a_id, p.party_b_id, p.a_owes, p.b_owes, p.obligation_count,"
            " 'pending', ''"
            f" FROM ({_PAIR_AGGREGATE.format(source=source)}) p",
            [batch_id, *take_params],
        )
        netted_at = time.perf_counter()
        cursor.execute(
            "INSERT INTO settlement_nettingposition"
            " (batch_id, enterprise_id, currency, owes, owed, bilateral_out, bilateral_in)"
            " SELECT %s, x.enterprise_id, x.currency, SUM(x.owes), SUM(x.owed), SUM(x.b_out), SUM(x.b_in) FROM ("
            "  SELECT party_a_id AS enterprise_id, currency, a_owes AS owes, b_owes AS owed,"
            "   CASE WHEN a_owes > b_owes THEN a_owes - b_owes ELSE 0 END AS b_out,"
            "   CASE WHEN b_owes > a_owes THEN b_owes - a_owes ELSE 0 END AS b_in"
            "  FROM settlement_nettingpair WHERE batch_id = %s"
            "  UNION ALL"
            "  SELECT party_b_id, currency, b_owes, a_owes,"
            "   CASE WHEN b_owes > a_owes THEN b_owes - a_owes ELSE 0 END,"
            "   CASE WHEN a_owes > b_owes THEN a_owes - b_owes ELSE 0 END"
            "  FROM settlement_nettingpair WHERE batch_id = %s"
            " ) x GROUP BY x.enterprise_id, x.currency",
            [batch_id, batch_id, batch_id],
        )
        if _is_postgresql():
            # Fresh statistics for the new pair rows, and for the obligations
            # (a million may have arrived since autovacuum last looked).
            # Without them the planner takes the batch's rows for a handful and
            # joins them with nested loops (100 s for 37,000 pairs; minutes for
            # a million obligations).
            cursor.execute("ANALYZE settlement_nettingpair")
            cursor.execute("ANALYZE settlement_nettingposition")
            cursor.execute("ANALYZE settlement_obligation")
    finished = time.perf_counter()
    batch.status = BatchStatus.SETTLING
    batch.settling_at = timezone.now()
    batch.multilateral_currencies = [c for c in money.CURRENCY_CODES if c in settings.NETTING_MULTILATERAL_CURRENCIES]
    _record_phase(batch, "net", netted_at - started)
    _record_phase(batch, "positions", finished - netted_at)
    batch.save(update_fields=["status", "settling_at", "multilateral_currencies", "phase_seconds"])


# --- settling a multilateral currency through clearing --------------------------------------

# Each participant's position over the pairs of one currency still pending:
# what it is owed minus what it owes (positive: a net creditor).
_MULTILATERAL_POSITIONS = """
SELECT x.enterprise_id, SUM(x.net) AS position FROM (
  SELECT party_a_id AS enterprise_id, b_owes - a_owes AS net FROM settlement_nettingpair
   WHERE batch_id = %s AND currency = %s AND status = 'pending'
  UNION ALL
  SELECT party_b_id, a_owes - b_owes FROM settlement_nettingpair
   WHERE batch_id = %s AND currency = %s AND status = 'pending'
) x GROUP BY x.enterprise_id
"""

# The participants that cannot settle their position now, with the reason:
# any that may not move money, and every net debtor whose wallet is frozen or
# holds less than its whole position (all or nothing: no partial pay-in).
_MULTILATERAL_SHORT = f"""
SELECT p.enterprise_id,
       CASE WHEN e.status <> 'approved'
            THEN 'enterprise_not_active: participant ' || e.public_id || ' may not move money'
            WHEN w.id IS NULL THEN 'account_not_found: participant ' || e.public_id || ' has no wallet'
            WHEN w.is_frozen THEN 'account_frozen: the wallet of net debtor ' || e.public_id || ' is frozen'
            ELSE 'insufficient_funds: net debtor ' || e.public_id || ' could not pay its multilateral position'
       END AS reason
  FROM ({_MULTILATERAL_POSITIONS}) p
  JOIN corporates_enterprise e ON e.id = p.enterprise_id
  LEFT JOIN settlement_account w ON w.enterprise_id = p.enterprise_id AND w.currency = %s AND w.kind = 'wallet'
 WHERE e.status <> 'approved' OR w.id IS NULL OR (p.position < 0 AND (w.is_frozen OR w.balance < -p.position))
"""


class ClearingAccountMissing(DomainError):
    code = "clearing_account_missing"
    title = "The platform has no clearing account in this currency."
    http_status = 500


def _clearing_account_id(cursor, currency: str) -> int:
    cursor.execute(
        "SELECT id FROM settlement_account WHERE enterprise_id IS NULL AND kind = 'clearing' AND currency = %s",
        [currency],
    )
    row = cursor.fetchone()
    if row is None:
        raise ClearingAccountMissing(f"No clearing account in {currency}.")
    return int(row[0])


def _lock_multilateral_accounts(cursor, batch_id: int, currency: str, clearing_id: int) -> None:
    """Lock the clearing account and the participants' wallets of one currency, in id order (the ledger's)."""
    if not _is_postgresql():
        return  # SQLite: the IMMEDIATE transaction already holds the database's write lock.
    cursor.execute(
        "SELECT count(*) FROM (SELECT a.id FROM settlement_account a"
        " WHERE a.id = %s OR (a.kind = 'wallet' AND a.currency = %s AND a.enterprise_id IN ("
        "  SELECT party_a_id FROM settlement_nettingpair WHERE batch_id = %s AND currency = %s AND status = 'pending'"
        "  UNION SELECT party_b_id FROM settlement_nettingpair"
        "  WHERE batch_id = %s AND currency = %s AND status = 'pending'))"
        " ORDER BY a.id FOR NO KEY UPDATE) locked",
        [clearing_id, currency, batch_id, currency, batch_id, currency],
    )
    cursor.fetchone()


def _multilateral_pay_in(batch_id: int) -> None:
    """Multilateral currencies, step one (one transaction): fix who settles, and take the net debtors' pay-ins.

    Per currency: participants that cannot settle their whole position are
    removed with every pair they are part of (those pairs go unpaid, and
    their obligations roll or fail at completion like an unpayable bilateral
    pair); the positions of the rest are recomputed, and again, until no one
    is short. All the short participants of a round go at once, so that the
    rounds stay few however many are short. Then each remaining net debtor
    pays its whole position into the platform's clearing account, and the
    positions are persisted for the pay-out. A currency whose positions are
    persisted is done: run again, this step does nothing.
    """
    batch = _locked(batch_id)
    if batch.status != BatchStatus.SETTLING or not batch.multilateral_currencies:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        _big_step(cursor)
        for currency in batch.multilateral_currencies:
            cursor.execute(
                "SELECT count(*) FROM settlement_nettingposition"
                " WHERE batch_id = %s AND currency = %s AND multilateral_status <> ''",
                [batch_id, currency],
            )
            if cursor.fetchone()[0]:
                continue  # paid in already (a resumed batch)
            clearing_id = _clearing_account_id(cursor, currency)
            _lock_multilateral_accounts(cursor, batch_id, currency, clearing_id)
            pair_params = [batch_id, currency, batch_id, currency]
            while True:
                _temp_table(cursor, "hl_netting_removed", _MULTILATERAL_SHORT, [*pair_params, currency])
                cursor.execute("SELECT count(*) FROM hl_netting_removed")
                if not cursor.fetchone()[0]:
                    break
                cursor.execute(
                    "UPDATE settlement_nettingpair SET status = 'unpaid', reason = ("
                    "  SELECT r.reason || ' (batch ' || %s || ', multilateral)' FROM hl_netting_removed r"
                    "  WHERE r.enterprise_id IN (settlement_nettingpair.party_a_id, settlement_nettingpair.party_b_id)"
                    "  ORDER BY r.enterprise_id LIMIT 1)"
                    " WHERE batch_id = %s AND currency = %s AND status = 'pending'"
                    " AND (party_a_id IN (SELECT enterprise_id FROM hl_netting_removed)"
                    "  OR party_b_id IN (SELECT enterprise_id FROM hl_netting_removed))",
                    [batch.public_id, batch_id, currency],
                )
            _drop_temp_table(cursor, "hl_netting_removed")
            _temp_table(cursor, "hl_netting_final", _MULTILATERAL_POSITIONS, pair_params)
            # Every participant first counts as removed; those that settle are then set.
            cursor.execute(
                "UPDATE settlement_nettingposition SET multilateral_status = 'removed'"
                " WHERE batch_id = %s AND currency = %s",
                [batch_id, currency],
            )
            cursor.execute(
                "UPDATE settlement_nettingposition SET multilateral_settled = f.position,"
                " multilateral_status = CASE WHEN f.position > 0 THEN 'due' ELSE 'settled' END"
                " FROM hl_netting_final f WHERE settlement_nettingposition.batch_id = %s"
                " AND settlement_nettingposition.currency = %s"
                " AND settlement_nettingposition.enterprise_id = f.enterprise_id",
                [batch_id, currency],
            )
            if _is_postgresql():
                # The ledger plans its own statements (see _settle_pass).
                cursor.execute("RESET work_mem")
            ledger_post_transfers(
                kind=EntryKind.NETTING,
                source_sql=(
                    "SELECT 'netting:' || %s || ':' || f.enterprise_id || ':' || %s || ':in',"
                    " w.id, CAST(%s AS BIGINT), %s, CAST(-f.position AS BIGINT), NULL"
                    " FROM hl_netting_final f JOIN settlement_account w"
                    "  ON w.enterprise_id = f.enterprise_id AND w.currency = %s AND w.kind = 'wallet'"
                    " WHERE f.position < 0 ORDER BY f.enterprise_id"
                ),
                params=[batch.public_id, currency, clearing_id, currency, currency],
                memo=f"Netting batch {batch.public_id}: multilateral pay-in",
            )
            _drop_temp_table(cursor, "hl_netting_final")
    _record_phase(batch, "multilateral_pay_in", time.perf_counter() - started)
    batch.save(update_fields=["phase_seconds"])


def _multilateral_pay_out(batch_id: int) -> None:
    """Multilateral currencies, step two (one transaction): pay the net creditors out of clearing.

    What is paid is what the pay-in persisted: clearing holds exactly its sum,
    and is zero after. The pairs that stayed in settle in the same commit; a
    resumed batch finds no position due and posts nothing.
    """
    batch = _locked(batch_id)
    if batch.status != BatchStatus.SETTLING or not batch.multilateral_currencies:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for currency in batch.multilateral_currencies:
            clearing_id = _clearing_account_id(cursor, currency)
            ledger_post_transfers(
                kind=EntryKind.NETTING,
                source_sql=(
                    "SELECT 'netting:' || %s || ':' || p.enterprise_id || ':' || p.currency || ':out',"
                    " CAST(%s AS BIGINT), w.id, p.currency, p.multilateral_settled, NULL"
                    " FROM settlement_nettingposition p JOIN settlement_account w"
                    "  ON w.enterprise_id = p.enterprise_id AND w.currency = p.currency AND w.kind = 'wallet'"
                    " WHERE p.batch_id = %s AND p.currency = %s AND p.multilateral_status = 'due'"
                    " ORDER BY p.enterprise_id"
                ),
                params=[batch.public_id, clearing_id, batch_id, currency],
                memo=f"Netting batch {batch.public_id}: multilateral pay-out",
            )
            cursor.execute(
                "UPDATE settlement_nettingposition SET multilateral_status = 'settled'"
                " WHERE batch_id = %s AND currency = %s AND multilateral_status = 'due'",
                [batch_id, currency],
            )
            cursor.execute(
                "UPDATE settlement_nettingpair SET status = 'settled'"
                " WHERE batch_id = %s AND currency = %s AND status = 'pending'",
                [batch_id, currency],
            )
    _record_phase(batch, "multilateral_pay_out", time.perf_counter() - started)
    batch.save(update_fields=["phase_seconds"])


# --- settling: liquidity passes -----------------------------------------------------------

# The pairs of one pass: every pending pair whose parties may move money and
# whose net payer can pay it now, taking the payer's pending nets in this
# currency smallest first while their running sum fits its balance. Zero nets
# always fit. The wallets are locked before this runs.
_OPEN_PAIRS_SQL = """
SELECT p.id AS pair_id, p.currency, p.party_a_id, p.party_b_id,
       CASE WHEN p.a_owes >= p.b_owes THEN p.party_a_id ELSE p.party_b_id END AS payer_id,
       CASE WHEN p.a_owes >= p.b_owes THEN p.party_b_id ELSE p.party_a_id END AS payee_id,
       CASE WHEN p.a_owes >= p.b_owes THEN p.a_owes - p.b_owes ELSE p.b_owes - p.a_owes END AS amount
  FROM settlement_nettingpair p
 WHERE p.batch_id = %s AND p.status = 'pending'
"""
_PAYABLE_PAIRS_SQL = """
SELECT c.pair_id, c.currency, c.party_a_id, c.party_b_id, c.payer_wallet_id, c.payee_wallet_id, c.amount
  FROM (
    SELECT e.*, pw.id AS payer_wallet_id, qw.id AS payee_wallet_id, pw.balance AS payer_balance,
           SUM(e.amount) OVER (PARTITION BY e.payer_id, e.currency ORDER BY e.amount, e.pair_id
                               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
      FROM hl_netting_open e
      JOIN corporates_enterprise pe ON pe.id = e.payer_id AND pe.status = 'approved'
      JOIN corporates_enterprise qe ON qe.id = e.payee_id AND qe.status = 'approved'
      JOIN settlement_account pw
        ON pw.enterprise_id = e.payer_id AND pw.currency = e.currency AND pw.kind = 'wallet'
      JOIN settlement_account qw
        ON qw.enterprise_id = e.payee_id AND qw.currency = e.currency AND qw.kind = 'wallet'
     WHERE e.amount = 0 OR NOT pw.is_frozen
  ) c
 WHERE c.running <= c.payer_balance
"""


def _lock_wallets(cursor, batch_id: int) -> None:
    """Lock the wallets of every party with a pending pair, in id order (the ledger's order)."""
    if not _is_postgresql():
        return  # SQLite: the IMMEDIATE transaction already holds the database's write lock.
    cursor.execute(
        "SELECT count(*) FROM (SELECT a.id FROM settlement_account a"
        " WHERE a.kind = 'wallet' AND a.enterprise_id IN ("
        "  SELECT party_a_id FROM settlement_nettingpair WHERE batch_id = %s AND status = 'pending'"
        "  UNION SELECT party_b_id FROM settlement_nettingpair WHERE batch_id = %s AND status = 'pending')"
        " ORDER BY a.id FOR NO KEY UPDATE) locked",
        [batch_id, batch_id],
    )
    cursor.fetchone()


def _settle_pass(batch_id: int) -> int:
    """One liquidity pass, one transaction. Returns how many pairs it settled (0: no progress, or not settling)."""
    batch = _locked(batch_id)
    if batch.status != BatchStatus.SETTLING:
        return 0
    started = time.perf_counter()
    pass_number = batch.passes + 1
    steps: dict[str, float] = {}
    clock = [time.perf_counter()]

    def step(name: str) -> None:
        now_ = time.perf_counter()
        steps[name] = now_ - clock[0]
        clock[0] = now_

    with connection.cursor() as cursor:
        _big_step(cursor)
        _lock_wallets(cursor, batch_id)
        step("lock")
        # Staged first so that the planner joins on a table it has statistics for.
        _temp_table(cursor, "hl_netting_open", _OPEN_PAIRS_SQL, [batch_id])
        _temp_table(cursor, "hl_netting_pass", _PAYABLE_PAIRS_SQL, [])
        cursor.execute("SELECT count(*) FROM hl_netting_pass")
        (pairs,) = cursor.fetchone()
        step("select")
        if _is_postgresql():
            # The ledger plans its own statements: measured, they ran slower
            # with the batch's work_mem (hash joins over the whole journal).
            cursor.execute("RESET work_mem")
        if pairs:
            ledger_post_transfers(
                kind=EntryKind.NETTING,
                source_sql=(
                    "SELECT 'netting:' || %s || ':' || t.party_a_id || ':' || t.party_b_id || ':' || t.currency,"
                    " t.payer_wallet_id, t.payee_wallet_id, t.currency, t.amount, NULL"
                    " FROM hl_netting_pass t WHERE t.amount > 0 ORDER BY t.pair_id"
                ),
                params=[batch.public_id],
                memo=f"Netting batch {batch.public_id}",
            )
            step("post")
            cursor.execute(
                "UPDATE settlement_nettingpair SET status = 'settled', settled_pass = %s"
                " WHERE id IN (SELECT pair_id FROM hl_netting_pass)",
                [pass_number],
            )
            step("mark_pairs")
            _test_pause("in_pass")
        _drop_temp_table(cursor, "hl_netting_pass")
        _drop_temp_table(cursor, "hl_netting_open")
    for name, seconds in steps.items():
        _record_phase(batch, f"settle.{name}", seconds)
    if pairs:
        batch.passes = pass_number
    _record_phase(batch, "settle", time.perf_counter() - started)
    batch.save(update_fields=["passes", "phase_seconds"])
    return pairs


def _test_pause(where: str) -> None:
    # Test-only: lets a test kill -9 the worker at a known point of a batch.
    if settings.NETTING_TEST_PAUSE_SECONDS and settings.NETTING_TEST_PAUSE_AT == where:
        time.sleep(settings.NETTING_TEST_PAUSE_SECONDS)


# --- completion -------------------------------------------------------------------------

_UNPAID_REASON = """
CASE WHEN pe.status <> 'approved' THEN 'enterprise_not_active: the net payer may not move money'
     WHEN qe.status <> 'approved' THEN 'enterprise_not_active: the net payee may not move money'
     WHEN pw.is_frozen THEN 'account_frozen: the net payer''s wallet is frozen'
     ELSE 'insufficient_funds: the net payer could not pay its net in this batch' END
"""


def _complete(batch_id: int) -> None:
    """settling → completed: roll or fail what stayed unpaid, write the report. One transaction."""
    batch = _locked(batch_id)
    if batch.status != BatchStatus.SETTLING:
        return
    started = time.perf_counter()
    now = timezone.now()
    with connection.cursor() as cursor:
        _big_step(cursor)
        cursor.execute(
            "UPDATE settlement_nettingpair SET status = 'unpaid', reason = ("
            f" SELECT {_UNPAID_REASON} || ' (batch ' || %s || ')'"
            " FROM corporates_enterprise pe, corporates_enterprise qe, settlement_account pw"
            " WHERE pe.id = (CASE WHEN a_owes >= b_owes THEN party_a_id ELSE party_b_id END)"
            "   AND qe.id = (CASE WHEN a_owes >= b_owes THEN party_b_id ELSE party_a_id END)"
            "   AND pw.enterprise_id = pe.id AND pw.currency = settlement_nettingpair.currency"
            "   AND pw.kind = 'wallet')"
            " WHERE batch_id = %s AND status = 'pending'",
            [batch.public_id, batch_id],
        )
        marking = time.perf_counter()
        settled, rolled, failed = _mark_obligations(cursor, batch, now)
        _record_phase(batch, "complete.mark_obligations", time.perf_counter() - marking)
        cursor.execute("SELECT SUM(obligation_count) FROM settlement_nettingpair WHERE batch_id = %s", [batch_id])
        (taken,) = cursor.fetchone()
        if settled + rolled + failed != (taken or 0):  # pragma: no cover - the cut's set cannot change while it runs
            raise AssertionError(
                f"batch {batch.public_id} netted {taken} obligations but marked {settled + rolled + failed}"
            )
    batch.report = _report(batch_id, rolled=rolled, failed=failed)
    batch.status = BatchStatus.COMPLETED
    batch.completed_at = timezone.now()
    _record_phase(batch, "complete", time.perf_counter() - started)
    # The total is end to end, as persisted: from the start of netting to now.
    # It holds what the phases do not: the commits (a pass's deferred foreign
    # key checks run at its commit), and the time between transactions.
    # "settle.post" and the like detail "settle".
    phases = {k: v for k, v in batch.phase_seconds.items() if "." not in k and k not in ("total", "commits_and_gaps")}
    total = (batch.completed_at - (batch.netting_at or batch.created_at)).total_seconds()
    batch.phase_seconds["commits_and_gaps"] = round(max(total - sum(phases.values()), 0), 3)
    batch.phase_seconds["total"] = round(total, 3)
    batch.save(update_fields=["status", "completed_at", "report", "phase_seconds"])
    public_id, report = batch.public_id, batch.report
    # robust: a broker that is down must not turn a committed batch into an error.
    transaction.on_commit(lambda: _emit_completed(batch_id, public_id, report), robust=True)


def _mark_obligations(cursor, batch: NettingBatch, now: datetime) -> tuple[int, int, int]:
    """Write each obligation the batch took, once: settled, or (its pair unpaid) failed or rolled to pending.

    Returns (settled, rolled, failed). The obligations of unpaid pairs first,
    through a join with those (few) pairs: failed after too many rolls or
    days past the value date, else pending again with the reason. Every other
    obligation the batch took belongs to a settled pair: one UPDATE without a
    join (on a million obligations a join with every pair cost about half as
    much again as the update itself). Each statement skips what an earlier
    one already marked for this batch (``batch_id``), so a statement never
    marks a row twice.
    """
    take, take_params = Cut.of(batch).sql()
    mine = f"{take} AND (o.batch_id IS NULL OR o.batch_id <> %s)"
    mine_params = [*take_params, batch.pk]
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM settlement_nettingpair WHERE batch_id = %s AND status = 'unpaid')", [batch.pk]
    )
    rolled = failed = 0
    if cursor.fetchone()[0]:
        fail_before = timezone.localdate(now) - timedelta(days=settings.NETTING_MAX_DAYS_PAST_VALUE_DATE)
        unpaid = (
            " FROM settlement_nettingpair t WHERE t.batch_id = %s AND t.status = 'unpaid'"
            f" AND {_OBLIGATION_PAIR_JOIN} AND {mine}"
        )
        cursor.execute(
            "UPDATE settlement_obligation AS o SET status = 'failed', failed_at = %s, updated_at = %s,"
            f" reason = t.reason, batch_id = %s {unpaid} AND (o.roll_count >= %s OR o.value_date < %s)",
            [now, now, batch.pk, batch.pk, *mine_params, settings.NETTING_MAX_ROLLS, fail_before],
        )
        failed = cursor.rowcount
        cursor.execute(
            "UPDATE settlement_obligation AS o SET status = 'pending', updated_at = %s,"
            f" reason = t.reason, roll_count = o.roll_count + 1, batch_id = %s {unpaid}",
            [now, batch.pk, batch.pk, *mine_params],
        )
        rolled = cursor.rowcount
    cursor.execute(
        "UPDATE settlement_obligation AS o SET status = 'settled', settled_at = %s, updated_at = %s, reason = '',"
        f" batch_id = %s WHERE {mine}",
        [now, now, batch.pk, *mine_params],
    )
    return cursor.rowcount, rolled, failed


def _percent(part: int, whole: int) -> str:
    if not whole:
        return "0.00"
    return str(((1 - Decimal(part) / Decimal(whole)) * 100).quantize(Decimal("0.01")))


def _report(batch_id: int, *, rolled: int, failed: int) -> dict[str, Any]:
    """The batch's figures, per currency and overall, from its pair and position rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT currency, SUM(obligation_count), SUM(a_owes + b_owes),"
            " SUM(CASE WHEN a_owes >= b_owes THEN a_owes - b_owes ELSE b_owes - a_owes END),"
            " SUM(CASE WHEN status = 'settled' AND a_owes <> b_owes THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN status = 'settled' THEN"
            "     CASE WHEN a_owes >= b_owes THEN a_owes - b_owes ELSE b_owes - a_owes END ELSE 0 END),"
            " SUM(CASE WHEN status = 'settled' THEN obligation_count ELSE 0 END),"
            " SUM(CASE WHEN status = 'settled' THEN 1 ELSE 0 END), COUNT(*)"
            " FROM settlement_nettingpair WHERE batch_id = %s GROUP BY currency ORDER BY currency",
            [batch_id],
        )
        pair_rows = cursor.fetchall()
        cursor.execute(
            "SELECT currency, SUM(CASE WHEN owed > owes THEN owed - owes ELSE 0 END), COUNT(*)"
            " FROM settlement_nettingposition WHERE batch_id = %s GROUP BY currency",
            [batch_id],
        )
        multilateral = {currency: (int(net), int(n)) for currency, net, n in cursor.fetchall()}
        # Multilateral currencies: what actually settled through clearing.
        cursor.execute(
            "SELECT currency, SUM(CASE WHEN multilateral_settled > 0 THEN multilateral_settled ELSE 0 END),"
            " SUM(CASE WHEN multilateral_settled <> 0 THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN multilateral_status = 'settled' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN multilateral_status = 'removed' THEN 1 ELSE 0 END)"
            " FROM settlement_nettingposition WHERE batch_id = %s AND multilateral_status <> ''"
            " GROUP BY currency",
            [batch_id],
        )
        through_clearing = {row[0]: tuple(int(v or 0) for v in row[1:]) for row in cursor.fetchall()}
    currencies: dict[str, Any] = {}
    totals = {
        "gross_count": 0,
        "gross_value": 0,
        "bilateral_net_value": 0,
        "net_transfers": 0,
        "net_value": 0,
        "settled_obligations": 0,
        "pairs": 0,
        "settled_pairs": 0,
        "multilateral_net_value": 0,
    }
    for currency, count, gross, bilateral, transfers, net_value, settled, settled_pairs, pairs in pair_rows:
        multi, participants = multilateral.get(currency, (0, 0))
        figures = {
            "gross_count": int(count),
            "gross_value": int(gross),
            "bilateral_net_value": int(bilateral),
            "multilateral_net_value": multi,
            "participants": participants,
            "pairs": int(pairs),
            "settled_pairs": int(settled_pairs),
            "net_transfers": int(transfers),
            "net_value": int(net_value),
            "settled_obligations": int(settled),
            "efficiency_bilateral_pct": _percent(int(bilateral), int(gross)),
            "efficiency_multilateral_pct": _percent(multi, int(gross)),
        }
        if currency in through_clearing:
            # One pay-in per net debtor and one pay-out per net creditor replace the pair transfers.
            value, transfers_, settled_participants, removed = through_clearing[currency]
            figures.update(
                settlement="multilateral",
                net_transfers=transfers_,
                net_value=value,
                multilateral_settled_value=value,
                participants_settled=settled_participants,
                participants_removed=removed,
            )
        else:
            figures["settlement"] = "bilateral"
        currencies[currency] = figures
        for key in totals:
            totals[key] += figures[key]
    return {
        "currencies": currencies,
        "obligations": {
            "claimed": totals["gross_count"],
            "settled": totals["settled_obligations"],
            "rolled": rolled,
            "failed": failed,
        },
        "pairs": {"total": totals["pairs"], "settled": totals["settled_pairs"]},
        "net_transfers": totals["net_transfers"],
        # Across currencies the figure adds minor units without FX: the three
        # currencies' values are of one order here (HKD, CNH ~ 7-8 per USD).
        "efficiency_bilateral_pct": _percent(totals["bilateral_net_value"], totals["gross_value"]),
        "efficiency_multilateral_pct": _percent(totals["multilateral_net_value"], totals["gross_value"]),
    }


def _emit_completed(batch_id: int, public_id: str, report: dict[str, Any]) -> None:
    # After the commit: the events go out from their own task, so that a
    # million obligations' events never lengthen the batch.
    from settlement.netting.tasks import netting_batch_events_task

    netting_batch_events_task.delay(batch_id=batch_id)
    logger.info(
        "batch.completed %s: %s obligations settled, %s rolled, %s failed, %s net transfers",
        public_id,
        report["obligations"]["settled"],
        report["obligations"]["rolled"],
        report["obligations"]["failed"],
        report["net_transfers"],
    )


# --- events --------------------------------------------------------------------------------

SETTLED_IDS_PER_EVENT = 1_000


def batch_events_emit(*, batch_id: int) -> int:
    """Tell every participant of a completed batch what happened to it, once. Returns the events emitted.

    * ``batch.completed`` to each participant: its positions per currency;
    * ``obligation.settled`` to each participant: the ids of its obligations
      (owed and owed to it) settled in the batch, at most 1,000 per event;
    * ``obligation.failed`` to both sides of every obligation that failed.

    One transaction, guarded by ``events_emitted_at`` under the batch's row
    lock: run twice, it emits nothing the second time.
    """
    from corporates.webhooks import event_emit
    from settlement.netting.models import NettingPosition
    from settlement.obligations.models import Obligation, ObligationStatus

    def emit() -> int:
        batch = _locked(batch_id)
        if batch.status != BatchStatus.COMPLETED or batch.events_emitted_at is not None:
            return 0
        positions: dict[int, list[dict[str, Any]]] = {}
        for p in NettingPosition.objects.filter(batch=batch).order_by("enterprise_id", "currency"):
            positions.setdefault(p.enterprise_id, []).append(
                {
                    "currency": p.currency,
                    "owed": Amount(p.owes, p.currency).to_json(),
                    "owed_to_you": Amount(p.owed, p.currency).to_json(),
                    "paid_net": Amount(p.net_paid, p.currency).to_json(),
                    "received_net": Amount(p.net_received, p.currency).to_json(),
                }
            )
        enterprises = Enterprise.objects.in_bulk(list(positions))
        emitted = 0
        for enterprise_id, rows in positions.items():
            enterprise = enterprises[enterprise_id]
            event_emit(
                enterprise=enterprise,
                type="batch.completed",
                data={"batch": batch.public_id, "cutoff_at": batch.cutoff_at.isoformat(), "positions": rows},
            )
            settled = (
                Obligation.objects.filter(batch=batch, status=ObligationStatus.SETTLED)
                .filter(Q(payer_id=enterprise_id) | Q(payee_id=enterprise_id))
                .order_by("id")
                .values_list("public_id", flat=True)
            )
            chunk: list[str] = []
            for public_id in settled.iterator(chunk_size=SETTLED_IDS_PER_EVENT):
                chunk.append(public_id)
                if len(chunk) == SETTLED_IDS_PER_EVENT:
                    event_emit(
                        enterprise=enterprise,
                        type="obligation.settled",
                        data={"batch": batch.public_id, "obligations": chunk},
                    )
                    emitted += 1
                    chunk = []
            if chunk:
                event_emit(
                    enterprise=enterprise,
                    type="obligation.settled",
                    data={"batch": batch.public_id, "obligations": chunk},
                )
                emitted += 1
            emitted += 1
        failed = Obligation.objects.filter(batch=batch, status=ObligationStatus.FAILED).select_related("payer", "payee")
        for obligation in failed.iterator(chunk_size=1000):
            data = {
                "id": obligation.public_id,
                "batch": batch.public_id,
                "payer": obligation.payer.public_id,
                "payee": obligation.payee.public_id,
                "amount": Amount(obligation.amount, obligation.currency).to_json(),
                "value_date": obligation.value_date.isoformat(),
                "reason": obligation.reason,
            }
            for side in (obligation.payer, obligation.payee):
                event_emit(enterprise=side, type="obligation.failed", data=data)
                emitted += 1
        batch.events_emitted_at = timezone.now()
        batch.save(update_fields=["events_emitted_at"])
        return emitted

    return run_in_transaction(emit)


# --- preview ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewRow:
    counterparty_id: int
    counterparty_public_id: str
    currency: str
    owes: int  # what the enterprise owes the counterparty (minor units)
    owed: int  # what the counterparty owes the enterprise
    obligation_count: int

    @property
    def net(self) -> int:
        """Signed: positive when the enterprise would receive."""
        return self.owed - self.owes


def netting_preview(*, enterprise: Enterprise, value_date: date | None = None) -> list[PreviewRow]:
    """The enterprise's projected nets per counterparty and currency for the next cut-off.

    The same aggregation as a batch, over the obligations the next cut-off
    would take (pending, approved, due by ``value_date``, default today).
    """
    value_date = value_date or timezone.localdate()
    # The next batch's cut, as if it were taken now: everything due, except
    # what the batches running now hold.
    running = tuple((cut.cut_id, cut.value_date) for cut in cuts_running())
    take, take_params = Cut(0, "", cut_id=2**63 - 1, value_date=value_date, exclusions=running).sql()
    source = (
        "(SELECT o.payer_id, o.payee_id, o.currency, o.amount FROM settlement_obligation o"
        f" WHERE {take} AND (o.payer_id = %s OR o.payee_id = %s))"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _PAIR_AGGREGATE.format(source=source) + " ORDER BY 1, 2, 3",
            [*take_params, enterprise.pk, enterprise.pk],
        )
        rows = cursor.fetchall()
    others = {a if b == enterprise.pk else b for _, a, b, *_ in rows}
    public_ids = dict(Enterprise.objects.filter(pk__in=others).values_list("pk", "public_id"))
    preview = []
    for currency, party_a, party_b, a_owes, b_owes, count in rows:
        mine_is_a = party_a == enterprise.pk
        other = party_b if mine_is_a else party_a
        preview.append(
            PreviewRow(
                counterparty_id=other,
                counterparty_public_id=public_ids[other],
                currency=currency,
                owes=int(a_owes if mine_is_a else b_owes),
                owed=int(b_owes if mine_is_a else a_owes),
                obligation_count=int(count),
            )
        )
    return preview

"""What a redemption request checks, read in ONE statement under the enterprise's lock.

A request below the approval threshold is the hot path of redemptions: each
one used to read the enterprise (locked), its status again (FOR SHARE), the
bank account, its open sanctions alerts, today's total, the limits (twice),
the wallet and the platform's in-transit account, one ORM query each. Those
are eight round trips and eight compiled querysets for values that two
statements return; the checks themselves stay in their guards
(``enterprise_require_active``, ``bank_account_require_payable``, the limits),
which are handed these values instead of reading them again.

Two statements, not one: the first locks the enterprise row ``FOR NO KEY
UPDATE``, which serialises the enterprise's requests (two at once cannot both
fit under the daily limit) and is stronger than the ``FOR SHARE`` that
``enterprise_require_active`` takes, so a freeze still waits for the requests
already past the guard; it returns the row's latest status. The second reads
the rest, and must come after the lock is granted: in READ COMMITTED a
statement reads as of its own start, so a total read by the locking statement
itself would miss the redemption that the previous lock holder committed while
we waited (tests/settlement/test_redemptions_concurrency.py catches it).

Portable SQL: the lock clause is PostgreSQL's (SQLite runs one writing
transaction at a time already), amounts come back as text and become Decimal
here, never float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection

from config.db import is_postgresql, raw_instances
from corporates.models import AlertStatus, Enterprise, EnterpriseLimit
from settlement.ledger.models import AccountKind
from settlement.redemptions.models import LIVE_STATES

_LIVE = tuple(str(state) for state in LIVE_STATES)

_LOCK_SQL = "SELECT status FROM corporates_enterprise WHERE id = %s"

_SQL = f"""
SELECT b.status, b.currency,
       EXISTS (SELECT 1 FROM corporates_sanctionsalert a
               WHERE a.party_ref = b.public_id AND a.status = %(alert_open)s),
       (SELECT COALESCE(SUM(r.amount), 0) FROM settlement_redemption r
        WHERE r.enterprise_id = e.id AND r.currency = %(currency)s AND r.requested_at >= %(since)s
          AND r.state IN ({", ".join(f"%(live{i})s" for i in range(len(_LIVE)))})),
       l.id, CAST(l.single_payment AS TEXT), CAST(l.daily_redemption AS TEXT), CAST(l.approval_threshold AS TEXT),
       w.id, w.balance,
       (SELECT t.id FROM settlement_account t
        WHERE t.enterprise_id IS NULL AND t.kind = %(in_transit)s AND t.currency = %(currency)s)
FROM corporates_enterprise e
LEFT JOIN corporates_bankaccount b ON b.id = %(bank_account)s
LEFT JOIN corporates_enterpriselimit l ON l.enterprise_id = e.id AND l.currency = %(currency)s
LEFT JOIN settlement_account w ON w.enterprise_id = e.id AND w.kind = %(wallet)s AND w.currency = %(currency)s
WHERE e.id = %(enterprise)s
"""


@dataclass(frozen=True)
class RequestFacts:
    enterprise_status: str
    bank_account_status: str | None  # None: the row is gone
    bank_account_currency: str | None
    holder_alert_open: bool
    redeemed_today_minor: int  # live redemptions requested since ``since``, this currency
    limit_override: EnterpriseLimit | None  # unsaved copy of the override row, None = defaults
    wallet_id: int | None
    wallet_balance: int
    in_transit_id: int | None


def request_facts_lock(*, enterprise_id: int, bank_account_id: int, currency: str, since: datetime) -> RequestFacts:
    """Lock the enterprise row, then read every fact a request checks; call inside its transaction."""
    params = {
        "alert_open": AlertStatus.OPEN.value,
        "currency": currency,
        "since": connection.ops.adapt_datetimefield_value(since),
        "in_transit": AccountKind.REDEMPTION_IN_TRANSIT.value,
        "bank_account": bank_account_id,
        "wallet": AccountKind.WALLET.value,
        "enterprise": enterprise_id,
        **{f"live{i}": state for i, state in enumerate(_LIVE)},
    }
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL + (" FOR NO KEY UPDATE" if is_postgresql() else ""), [enterprise_id])
        locked = cursor.fetchone()
        if locked is None:
            raise Enterprise.DoesNotExist(f"No enterprise {enterprise_id}.")
        cursor.execute(_SQL, params)
        row = cursor.fetchone()
    status = locked[0]
    ba_status, ba_currency, alert, today, limit_id, single, daily, threshold, wallet_id, balance, transit = row
    override = None
    if limit_id is not None:
        override = EnterpriseLimit(
            id=limit_id,
            enterprise_id=enterprise_id,
            currency=currency,
            single_payment=_decimal(single),
            daily_redemption=_decimal(daily),
            approval_threshold=_decimal(threshold),
        )
    return RequestFacts(
        enterprise_status=status,
        bank_account_status=ba_status,
        bank_account_currency=ba_currency,
        holder_alert_open=bool(alert),
        redeemed_today_minor=int(today),
        limit_override=override,
        wallet_id=wallet_id,
        wallet_balance=int(balance or 0),
        in_transit_id=transit,
    )


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


# --- settling: the bank's answer -------------------------------------------------------------

_SETTLE_SQL = """
SELECT r.*,
       b.public_id AS bank_account_public_id,
       (SELECT t.id FROM settlement_account t
        WHERE t.enterprise_id IS NULL AND t.kind = %s AND t.currency = r.currency) AS in_transit_id,
       (SELECT t.id FROM settlement_account t
        WHERE t.enterprise_id IS NULL AND t.kind = %s AND t.currency = r.currency) AS reserve_id,
       (SELECT w.id FROM settlement_account w
        WHERE w.enterprise_id = r.enterprise_id AND w.kind = %s AND w.currency = r.currency) AS wallet_id
FROM settlement_redemption r
JOIN corporates_bankaccount b ON b.id = r.bank_account_id
WHERE {where}
ORDER BY r.id
"""


def redemptions_lock_for_settling(*, payout_id: str = "", public_id: str = "", pk: int | None = None) -> list:
    """Redemptions by recorded payout id, public id or primary key, locked ``FOR UPDATE``, in id order.

    Each comes with what settling it needs, read in the same statement: its
    bank account's public id (the enterprise's event names it) and the ids of
    the accounts the second entry may touch (``in_transit_id``, ``reserve_id``,
    ``wallet_id``) — ids only, never balances, which only the ledger reads. In
    READ COMMITTED a row we waited for is re-read at its latest version, so a
    redemption another transaction has just settled shows as settled.
    """
    from settlement.redemptions.models import Redemption

    clauses, params = [], [AccountKind.REDEMPTION_IN_TRANSIT.value, AccountKind.RESERVE.value, AccountKind.WALLET.value]
    for column, value in (("r.payout_id", payout_id), ("r.public_id", public_id), ("r.id", pk)):
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    if not clauses:
        return []
    sql = _SETTLE_SQL.format(where=" OR ".join(clauses)) + (" FOR UPDATE OF r" if is_postgresql() else "")
    return raw_instances(Redemption, sql, params)


# --- the payout: what the bank is asked for -----------------------------------------------------

_PAYOUT_SQL = """
SELECT r.*,
       e.public_id AS enterprise_public_id,
       b.public_id AS bank_account_public_id, b.account_number AS bank_account_number,
       b.holder_name AS bank_account_holder_name, b.currency AS bank_account_currency,
       d.external_account_id AS destination_id
FROM settlement_redemption r
JOIN corporates_enterprise e ON e.id = r.enterprise_id
JOIN corporates_bankaccount b ON b.id = r.bank_account_id
LEFT JOIN settlement_payoutdestination d ON d.bank_account_id = b.id
WHERE r.id = %s
"""


def redemption_for_payout(*, redemption_id: int):
    """The redemption with what its payout request names: the enterprise's and the bank account's
    public ids, the account's details, and the bank's id for it once registered (``destination_id``,
    else None). One statement; the payout task runs once per redemption."""
    from settlement.redemptions.models import Redemption

    found = raw_instances(Redemption, _PAYOUT_SQL, [redemption_id])
    if not found:
        raise Redemption.DoesNotExist(f"No redemption {redemption_id}.")
    return found[0]


# --- the payout dispatcher: claiming a batch -----------------------------------------------------

_CLAIMABLE = """
SELECT id FROM settlement_redemption
 WHERE state = %(processing)s AND payout_id IS NULL
   AND (payout_claimed_until IS NULL OR payout_claimed_until < %(now)s)
 ORDER BY id LIMIT %(limit)s
"""

_CLAIM_SQL = f"""
WITH picked AS ({_CLAIMABLE} FOR UPDATE SKIP LOCKED),
r AS (
  UPDATE settlement_redemption u
     SET payout_attempts = u.payout_attempts + 1, payout_claimed_until = %(until)s
    FROM picked WHERE u.id = picked.id
  RETURNING u.*)
{_PAYOUT_SQL.replace("FROM settlement_redemption r", "FROM r").replace("WHERE r.id = %s", "ORDER BY r.id")}
"""


def redemptions_claim_for_payout(*, now: datetime, until: datetime, limit: int) -> list:
    """Claim up to ``limit`` approved redemptions that have no payout and no live claim; each comes
    as ``redemption_for_payout`` gives it, its ``payout_attempts`` already counted.

    One statement on PostgreSQL: ``SKIP LOCKED`` lets dispatchers running at
    once take disjoint batches, and the claim (``payout_claimed_until``)
    keeps the rows from the next dispatcher until the bank has answered. The
    rows are picked in a CTE, which runs once: written as ``UPDATE … WHERE id
    IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``, PostgreSQL may run the
    subquery again and claim more than ``limit`` (the concurrency test saw 6
    for 4). In READ COMMITTED the row lock re-checks the row's latest
    version, so a redemption that got its payout meanwhile is not claimed.
    SQLite (one writer at a time) takes the ids first, then claims and reads them.
    """
    from settlement.redemptions.models import Redemption, RedemptionState

    adapt = connection.ops.adapt_datetimefield_value
    params = {"processing": RedemptionState.PROCESSING.value, "now": adapt(now), "until": adapt(until), "limit": limit}
    if is_postgresql():
        return raw_instances(Redemption, _CLAIM_SQL, params)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIMABLE, params)
        ids = [row[0] for row in cursor.fetchall()]
        for pk in ids:
            cursor.execute(
                "UPDATE settlement_redemption SET payout_attempts = payout_attempts + 1, payout_claimed_until = %s"
                " WHERE id = %s",
                [params["until"], pk],
            )
    return [redemption_for_payout(redemption_id=pk) for pk in ids]

"""Reads on the ledger: balances, and the invariant checks behind verify_ledger."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Sum

from config import money
from corporates.models import Enterprise
from settlement.ledger.models import SUPPLY_KINDS, Account, AccountKind, Posting
from settlement.ledger.sealing import JournalChainReport, journal_verify


def balances_for(*, enterprise: Enterprise) -> dict[str, int]:
    """The enterprise's wallet balance per currency, in minor units (read from the account rows)."""
    rows = Account.objects.filter(enterprise=enterprise, kind=AccountKind.WALLET).values_list("currency", "balance")
    balances = {code: 0 for code in money.CURRENCY_CODES}
    balances.update(dict(rows))
    return balances


def wallet_for(*, enterprise: Enterprise, currency: str) -> Account:
    return Account.objects.get(enterprise=enterprise, currency=currency, kind=AccountKind.WALLET)


def platform_account(*, kind: str, currency: str) -> Account:
    return Account.objects.get(enterprise__isnull=True, kind=kind, currency=currency)


def account_postings_sum(*, account: Account) -> int:
    return Posting.objects.filter(account=account).aggregate(total=Sum("amount"))["total"] or 0


# --- invariants ----------------------------------------------------------------


@dataclass
class CurrencySummary:
    currency: str
    postings_sum: int = 0
    supply: int = 0  # wallets + in transit + fx inventory
    reserve: int = 0
    wallets: int = 0
    in_transit: int = 0
    fx_inventory: int = 0
    clearing: int = 0

    @property
    def backing_ok(self) -> bool:
        # Tokens a netting batch has moved into clearing are still issued
        # tokens the reserve backs. Leaving them out turned every open clearing
        # account into a false backing breach (even with clearing_may_be_open);
        # a non-zero clearing account is its own breach (invariant 3).
        return self.supply + self.clearing == self.reserve


@dataclass
class LedgerReport:
    currencies: dict[str, CurrencySummary]
    breaches: list[str] = field(default_factory=list)
    offending_accounts: list[int] = field(default_factory=list)
    journal: JournalChainReport | None = None

    @property
    def ok(self) -> bool:
        return not self.breaches


def ledger_verify(*, clearing_may_be_open: bool = False) -> LedgerReport:
    """Check invariants 1–4 of DESIGN.md: 1–3 with set-based SQL, 4 by recomputing the sealed chain.

    1. Per currency all postings sum to zero, every entry sums to zero per
       currency, and each account's balance equals ``normal * sum(postings)``.
    2. Per currency, token supply (wallets + in transit + FX inventory) equals
       the reserve.
    3. Every clearing account is zero (unless a batch is running).
    4. Every sealed journal block still hashes to what was sealed, and the
       blocks chain (settlement.ledger.sealing).
    """
    report = LedgerReport(currencies={code: CurrencySummary(code) for code in money.CURRENCY_CODES})
    with connection.cursor() as cursor:
        cursor.execute("SELECT currency, COALESCE(SUM(amount), 0) FROM settlement_posting GROUP BY currency")
        for currency, total in cursor.fetchall():
            report.currencies.setdefault(currency, CurrencySummary(currency)).postings_sum = int(total)
            if int(total) != 0:
                report.breaches.append(f"{currency}: postings sum to {total}, not zero")

        cursor.execute(
            "SELECT entry_id, currency, SUM(amount) FROM settlement_posting"
            " GROUP BY entry_id, currency HAVING SUM(amount) <> 0 ORDER BY entry_id LIMIT 20"
        )
        for entry_id, currency, total in cursor.fetchall():
            report.breaches.append(f"entry {entry_id}: {currency} postings sum to {total}")

        # The journal's references (proven by triggers, not foreign keys: see
        # migrations/sql/0014_ledger_set_based_integrity.pg.sql).
        cursor.execute(
            "SELECT 'posting ' || p.id || ' names no existing '"
            " || CASE WHEN e.id IS NULL THEN 'entry' ELSE 'account' END"
            " FROM settlement_posting p"
            " LEFT JOIN settlement_journalentry e ON e.id = p.entry_id"
            " LEFT JOIN settlement_account a ON a.id = p.account_id"
            " WHERE e.id IS NULL OR a.id IS NULL ORDER BY p.id LIMIT 20"
        )
        report.breaches.extend(breach for (breach,) in cursor.fetchall())
        cursor.execute(
            "SELECT 'entry ' || e.id || ' reverses no existing entry' FROM settlement_journalentry e"
            " WHERE e.reverses_id IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM settlement_journalentry o WHERE o.id = e.reverses_id)"
            " ORDER BY e.id LIMIT 20"
        )
        report.breaches.extend(breach for (breach,) in cursor.fetchall())

        cursor.execute(
            "SELECT a.id, a.public_id, a.balance, a.normal * COALESCE(p.total, 0)"
            " FROM settlement_account a"
            " LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM settlement_posting GROUP BY account_id) p"
            "   ON p.account_id = a.id"
            " WHERE a.balance <> a.normal * COALESCE(p.total, 0)"
            " ORDER BY a.id"
        )
        for account_id, public_id, balance, expected in cursor.fetchall():
            report.offending_accounts.append(account_id)
            report.breaches.append(
                f"account {account_id} ({public_id}): balance {balance} but postings give {expected}"
            )

        cursor.execute("SELECT currency, kind, SUM(balance) FROM settlement_account GROUP BY currency, kind")
        per_kind: dict[str, dict[str, int]] = defaultdict(dict)
        for currency, kind, total in cursor.fetchall():
            per_kind[currency][kind] = int(total or 0)

    for currency, kinds in per_kind.items():
        summary = report.currencies.setdefault(currency, CurrencySummary(currency))
        summary.wallets = kinds.get(AccountKind.WALLET, 0)
        summary.in_transit = kinds.get(AccountKind.REDEMPTION_IN_TRANSIT, 0)
        summary.fx_inventory = kinds.get(AccountKind.FX_INVENTORY, 0)
        summary.reserve = kinds.get(AccountKind.RESERVE, 0)
        summary.clearing = kinds.get(AccountKind.CLEARING, 0)
        summary.supply = sum(kinds.get(kind, 0) for kind in SUPPLY_KINDS)
        if not summary.backing_ok:
            report.breaches.append(f"{currency}: token supply {summary.supply} differs from reserve {summary.reserve}")
        if summary.clearing and not clearing_may_be_open:
            clearing_ids = list(
                Account.objects.filter(kind=AccountKind.CLEARING, currency=currency)
                .exclude(balance=0)
                .values_list("id", flat=True)
            )
            report.offending_accounts.extend(clearing_ids)
            report.breaches.append(f"{currency}: clearing holds {summary.clearing} outside a running batch")
    report.journal = journal_verify()
    report.breaches.extend(report.journal.breaches)
    return report

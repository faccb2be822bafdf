"""python manage.py verify_ledger — check the ledger's invariants; exit 1 on any breach."""

from django.core.management.base import BaseCommand, CommandError

from config import money
from settlement.ledger.selectors import ledger_verify


class Command(BaseCommand):
    help = (
        "Check invariants 1–4 of DESIGN.md: sums to zero, balances = postings, 100% backing, clearing zero,"
        " the sealed journal unaltered."
    )

    def handle(self, *args, **options):
        report = ledger_verify()
        header = (
            f"{'currency':<8} {'wallets':>18} {'in transit':>16} {'fx inventory':>18}"
            f" {'reserve':>18} {'backing':>8} {'clearing':>12}"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for code in money.CURRENCY_CODES:
            s = report.currencies[code]
            ratio = "n/a" if s.supply == 0 else f"{100 * s.reserve / s.supply:.2f}%" if s.backing_ok else "BREACH"
            self.stdout.write(
                f"{code:<8} {money.from_minor(s.wallets, code):>18} {money.from_minor(s.in_transit, code):>16}"
                f" {money.from_minor(s.fx_inventory, code):>18} {money.from_minor(s.reserve, code):>18}"
                f" {ratio:>8} {money.from_minor(s.clearing, code):>12}"
            )
        chain = report.journal
        self.stdout.write(
            f"journal: {chain.blocks} sealed block(s), {chain.sealed_entries} entries through id"
            f" {chain.sealed_through_entry_id}, head {chain.head_hash[:16]}…, {chain.unsealed_entries} not yet sealed"
        )
        if not report.ok:
            for breach in report.breaches:
                self.stderr.write(f"BREACH {breach}")
            if report.offending_accounts:
                self.stderr.write("offending accounts: " + ", ".join(map(str, sorted(set(report.offending_accounts)))))
            raise CommandError(f"ledger verification failed: {len(report.breaches)} breach(es)")
        self.stdout.write(self.style.SUCCESS("ledger OK: every invariant holds"))

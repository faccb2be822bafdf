"""`python manage.py verify_ledger`: clean on honest data, loud and specific on every breach.

The breaches are made the way they would happen in real life: someone edits a
balance with raw SQL, a posting is slipped in with the triggers disabled, a
netting batch leaves tokens in clearing.
"""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from config import money
from settlement.ledger.models import AccountKind, EntryKind, JournalEntry
from settlement.ledger.selectors import ledger_verify, platform_account
from settlement.ledger.services import Leg, ledger_post, ledger_reverse, legs_debit_credit
from settlement.management.commands.seed_demo import DEMO_ENTERPRISES, FX_INVENTORY


def verify() -> tuple[str, str]:
    """Run the command; return (stdout, stderr). Raises CommandError on a breach."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_ledger", stdout=out, stderr=err)
    except CommandError as exc:
        exc.stdout, exc.stderr = out.getvalue(), err.getvalue()
        raise
    return out.getvalue(), err.getvalue()


def verify_fails() -> CommandError:
    with pytest.raises(CommandError, match=r"ledger verification failed: \d+ breach") as caught:
        verify()
    # manage.py turns a CommandError into exit status 1.
    assert caught.value.returncode == 1
    return caught.value


def table_row(stdout: str, currency: str) -> list[str]:
    (line,) = [line for line in stdout.splitlines() if line.startswith(currency + " ")]
    return line.split()


def raw(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


@pytest.fixture
def demo(db, settings) -> None:
    # seed_demo sets four passwords; the production hasher's cost buys nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", stdout=io.StringIO())


# --- clean ---------------------------------------------------------------------------


def test_an_empty_ledger_is_clean(platform):
    stdout, stderr = verify()

    assert table_row(stdout, "HKD") == ["HKD", "0.00", "0.00", "0.00", "0.00", "n/a", "0.00"]
    assert "ledger OK" in stdout
    assert stderr == ""


def test_the_demo_data_is_clean_and_the_table_shows_it(demo):
    stdout, stderr = verify()

    header, rule, *rows = stdout.splitlines()
    assert header.split() == "currency wallets in transit fx inventory reserve backing clearing".split()
    assert set(rule) == {"-"}
    assert [row.split()[0] for row in rows[:3]] == list(money.CURRENCY_CODES)
    for code in money.CURRENCY_CODES:
        wallets = sum(Decimal(balances[code]) for *_, balances in DEMO_ENTERPRISES)
        fx = Decimal(FX_INVENTORY[code])
        assert table_row(stdout, code) == [
            code,
            str(wallets),
            "0.00",
            str(fx),
            str(wallets + fx),
            "100.00%",
            "0.00",
        ]
    assert "ledger OK: every invariant holds" in stdout
    assert stderr == ""


def test_seeding_the_demo_twice_changes_nothing(demo):
    entries = JournalEntry.objects.count()

    call_command("seed_demo", stdout=io.StringIO())

    assert JournalEntry.objects.count() == entries
    verify()


def test_a_day_of_demo_like_activity_stays_clean(demo, wallet):
    from corporates.models import Enterprise

    victoria, pearl, kowloon = (Enterprise.objects.get(registration_number=reg) for _, reg, *_ in DEMO_ENTERPRISES)
    in_transit = platform_account(kind=AccountKind.REDEMPTION_IN_TRANSIT, currency="USD")
    reserve = platform_account(kind=AccountKind.RESERVE, currency="USD")
    # A payment, a split payment, an FX swap, a redemption on its way and one paid, a reversal.
    ledger_post(
        idempotency_key="day:pay",
        kind=EntryKind.TRANSFER,
        legs=legs_debit_credit(debit=wallet(victoria, "HKD"), credit=wallet(pearl, "HKD"), minor=125_000_00),
    )
    ledger_post(
        idempotency_key="day:split",
        kind=EntryKind.NETTING,
        legs=[
            Leg.debit(wallet(pearl, "CNH"), 300_000_00),
            Leg.credit(wallet(victoria, "CNH"), 100_000_00),
            Leg.credit(wallet(kowloon, "CNH"), 200_000_00),
        ],
    )
    ledger_post(
        idempotency_key="day:fx",
        kind=EntryKind.FX_SWAP,
        legs=[
            Leg.debit(wallet(kowloon, "HKD"), 78_000_00),
            Leg.credit(platform_account(kind=AccountKind.FX_INVENTORY, currency="HKD"), 78_000_00),
            Leg.debit(platform_account(kind=AccountKind.FX_INVENTORY, currency="USD"), 10_000_00),
            Leg.credit(wallet(kowloon, "USD"), 10_000_00),
        ],
    )
    for key in ("day:redeem-1", "day:redeem-2"):
        ledger_post(
            idempotency_key=key,
            kind=EntryKind.REDEMPTION,
            legs=legs_debit_credit(debit=wallet(victoria, "USD"), credit=in_transit, minor=5_000_00),
        )
    ledger_post(
        idempotency_key="day:paid",
        kind=EntryKind.REDEMPTION_PAID,
        legs=legs_debit_credit(debit=in_transit, credit=reserve, minor=5_000_00),
    )
    mistake = ledger_post(
        idempotency_key="day:mistake",
        kind=EntryKind.TRANSFER,
        legs=legs_debit_credit(debit=wallet(kowloon, "CNH"), credit=wallet(pearl, "CNH"), minor=1_00),
    )
    ledger_reverse(entry_id=mistake.entry_id, idempotency_key="day:mistake:reversal")

    stdout, _ = verify()

    usd = table_row(stdout, "USD")
    wallets_usd = sum(Decimal(b["USD"]) for *_, b in DEMO_ENTERPRISES) - Decimal("10000.00") + Decimal("10000.00")
    assert usd[1:3] == [str(wallets_usd), "5000.00"]  # one redemption still in transit
    assert usd[5] == "100.00%"
    assert "ledger OK" in stdout


# --- breaches --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [AccountKind.WALLET, AccountKind.RESERVE, AccountKind.FX_INVENTORY])
def test_a_balance_edited_with_raw_sql_fails_and_names_the_account(demo, wallet, kind):
    from corporates.models import Enterprise

    if kind == AccountKind.WALLET:
        account = wallet(Enterprise.objects.get(registration_number=DEMO_ENTERPRISES[1][1]), "CNH")
    else:
        account = platform_account(kind=kind, currency="CNH")
    verify()

    raw("UPDATE settlement_account SET balance = balance + 1 WHERE id = %s", [account.id])

    error = verify_fails()
    assert f"BREACH account {account.id} ({account.public_id}): balance {account.balance + 1}" in error.stderr
    assert f"but postings give {account.balance}" in error.stderr
    assert f"offending accounts: {account.id}\n" in error.stderr
    # One minor unit more on either side is also a backing breach in CNH, and only CNH.
    assert "BREACH CNH: token supply" in error.stderr
    assert "HKD" not in error.stderr and "USD" not in error.stderr
    assert table_row(error.stdout, "CNH")[5] == "BREACH"


def test_every_edited_account_is_named(demo, wallet):
    from corporates.models import Enterprise

    accounts = [
        wallet(Enterprise.objects.get(registration_number=reg), code)
        for (_, reg, *_), code in zip(DEMO_ENTERPRISES, ("HKD", "USD", "CNH"), strict=True)
    ]
    for account in accounts:
        raw("UPDATE settlement_account SET balance = balance - 100 WHERE id = %s", [account.id])

    error = verify_fails()

    assert "offending accounts: " + ", ".join(str(a.id) for a in sorted(accounts, key=lambda a: a.id)) in error.stderr
    assert error.stderr.count("but postings give") == 3


def test_money_printed_past_the_triggers_is_a_backing_breach(demo, wallet):
    """A credit with no debit, its balance kept consistent: only the sums and the backing give it away."""
    from corporates.models import Enterprise

    account = wallet(Enterprise.objects.get(registration_number=DEMO_ENTERPRISES[0][1]), "HKD")
    # Triggers off for this transaction only (rolled back with the test): how a careless restore would do it.
    raw("SET LOCAL session_replication_role = replica")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO settlement_journalentry"
            " (public_id, idempotency_key, content_hash, kind, memo, metadata, created_at)"
            " VALUES ('je_printed', 'printed', 'x', 'mint', '', '{}', now()) RETURNING id"
        )
        entry_id = cursor.fetchone()[0]
    raw(
        "INSERT INTO settlement_posting (entry_id, account_id, currency, amount) VALUES (%s, %s, 'HKD', -1000000)",
        [entry_id, account.id],
    )
    raw("UPDATE settlement_account SET balance = balance + 1000000 WHERE id = %s", [account.id])
    raw("SET LOCAL session_replication_role = DEFAULT")

    error = verify_fails()

    assert "BREACH HKD: postings sum to -1000000, not zero" in error.stderr
    assert f"BREACH entry {entry_id}: HKD postings sum to -1000000" in error.stderr
    report = ledger_verify()
    hkd = report.currencies["HKD"]
    assert hkd.supply == hkd.reserve + 1_000_000
    assert f"BREACH HKD: token supply {hkd.supply} differs from reserve {hkd.reserve}" in error.stderr
    assert "but postings give" not in error.stderr  # the balance itself agrees with its postings


def test_tokens_left_in_clearing_are_reported_naming_the_clearing_account(demo, wallet):
    from corporates.models import Enterprise

    payer = wallet(Enterprise.objects.get(registration_number=DEMO_ENTERPRISES[0][1]), "USD")
    clearing = platform_account(kind=AccountKind.CLEARING, currency="USD")
    # The first half of a netting settlement, through the ledger service: payer -> clearing.
    ledger_post(
        idempotency_key="batch:leg-in",
        kind=EntryKind.NETTING,
        legs=legs_debit_credit(debit=payer, credit=clearing, minor=2_500_00),
    )

    error = verify_fails()

    assert "BREACH USD: clearing holds 250000 outside a running batch" in error.stderr
    assert f"offending accounts: {clearing.id}\n" in error.stderr
    assert table_row(error.stdout, "USD")[6] == "2500.00"
    # The tokens are in clearing, not gone: the reserve still backs them, so no backing breach.
    assert "token supply" not in error.stderr
    assert ledger_verify().breaches == ["USD: clearing holds 250000 outside a running batch"]
    # While a batch runs, clearing may hold tokens: then nothing is wrong.
    assert ledger_verify(clearing_may_be_open=True).ok


def test_a_clearing_account_that_is_back_to_zero_is_clean(demo, wallet):
    from corporates.models import Enterprise

    payer, payee = (
        wallet(Enterprise.objects.get(registration_number=reg), "USD") for _, reg, *_ in DEMO_ENTERPRISES[:2]
    )
    clearing = platform_account(kind=AccountKind.CLEARING, currency="USD")
    ledger_post(
        idempotency_key="batch:in",
        kind=EntryKind.NETTING,
        legs=legs_debit_credit(debit=payer, credit=clearing, minor=2_500_00),
    )
    ledger_post(
        idempotency_key="batch:out",
        kind=EntryKind.NETTING,
        legs=legs_debit_credit(debit=clearing, credit=payee, minor=2_500_00),
    )

    stdout, _ = verify()

    assert "ledger OK" in stdout


def test_a_posting_slipped_in_for_an_entry_that_does_not_exist_is_reported(demo, wallet):
    """The journal's references are proven by triggers, not foreign keys (0014): verify checks them too."""
    from corporates.models import Enterprise

    payer = wallet(Enterprise.objects.get(registration_number=DEMO_ENTERPRISES[0][1]), "HKD")
    payee = wallet(Enterprise.objects.get(registration_number=DEMO_ENTERPRISES[1][1]), "HKD")
    raw("SET LOCAL session_replication_role = replica")
    raw(
        "INSERT INTO settlement_posting (entry_id, account_id, currency, amount)"
        " VALUES (999999999, %s, 'HKD', 5), (999999999, %s, 'HKD', -5)",
        [payer.id, payee.id],
    )
    raw("SET LOCAL session_replication_role = DEFAULT")

    error = verify_fails()

    assert error.stderr.count("names no existing entry") == 2

"""The sealed journal (DESIGN.md invariant 4): hash-chained blocks, and every way of rewriting history caught.

Tampering is done the way it would happen in real life: with the immutability
triggers switched off (`session_replication_role = replica`, which a superuser
can do), raw SQL on the stored rows.
"""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from settlement.ledger.models import EntryKind, JournalBlock, JournalEntry
from settlement.ledger.sealing import GENESIS_HASH, journal_seal, journal_verify
from settlement.ledger.selectors import ledger_verify
from settlement.ledger.services import ledger_post, legs_debit_credit
from settlement.tasks import journal_seal_task
from tests.concurrency import run_in_threads


def raw(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def tamper(sql: str, params: list | None = None) -> None:
    """Raw SQL with the ledger's triggers switched off, as a superuser could."""
    with transaction.atomic():
        raw("SET LOCAL session_replication_role = replica")
        raw(sql, params)
        raw("SET LOCAL session_replication_role = DEFAULT")


@pytest.fixture
def make_pay(make_enterprise, mint, wallet):
    """A new pair of enterprises, the payer funded; returns ``post(n)``: n transfers, their entry ids."""

    def make():
        payer, payee = make_enterprise(), make_enterprise()
        mint(payer, "1000.00")
        counter = {"n": 0}

        def post(n: int = 1) -> list[int]:
            ids = []
            for _ in range(n):
                counter["n"] += 1
                ids.append(
                    ledger_post(
                        idempotency_key=f"seal-test:{payer.id}:{counter['n']}",
                        kind=EntryKind.TRANSFER,
                        legs=legs_debit_credit(debit=wallet(payer), credit=wallet(payee), minor=1_00),
                        memo=f"invoice {counter['n']}",
                    ).entry_id
                )
            return ids

        return post

    return make


@pytest.fixture
def pay(make_pay):
    return make_pay()


def breaches() -> list[str]:
    return journal_verify().breaches


# --- sealing ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_empty_journal_seals_nothing_and_verifies(platform):
    assert journal_seal().blocks == 0
    report = journal_verify()
    assert report.ok and report.blocks == 0 and report.head_hash == GENESIS_HASH


@pytest.mark.django_db
def test_entries_are_sealed_into_chained_blocks_of_bounded_size(pay):
    pay(7)
    total = JournalEntry.objects.count()

    result = journal_seal(block_max_entries=3)

    blocks = list(JournalBlock.objects.order_by("number"))
    assert result.entries == total and result.blocks == len(blocks) == -(-total // 3)
    assert [b.number for b in blocks] == list(range(1, len(blocks) + 1))
    assert blocks[0].previous_hash == GENESIS_HASH
    for before, after in zip(blocks, blocks[1:], strict=False):
        assert after.previous_hash == before.hash
        assert after.first_entry_id == before.last_entry_id + 1
    assert sum(b.entry_count for b in blocks) == total
    report = journal_verify()
    assert report.ok, report.breaches
    assert (report.blocks, report.sealed_entries, report.unsealed_entries) == (len(blocks), total, 0)
    assert report.head_hash == blocks[-1].hash


@pytest.mark.django_db
def test_sealing_again_adds_only_what_is_new_chained_to_the_head(pay):
    pay(2)
    journal_seal()
    head = JournalBlock.objects.order_by("-number").first()

    assert journal_seal().blocks == 0
    new_ids = pay(2)
    result = journal_seal()

    block = JournalBlock.objects.order_by("-number").first()
    assert result.blocks == 1 and block.number == head.number + 1
    assert block.previous_hash == head.hash
    assert block.first_entry_id == head.last_entry_id + 1 and block.last_entry_id == new_ids[-1]
    assert journal_verify().ok


@pytest.mark.django_db
def test_verify_ledger_reports_the_chain(pay):
    pay(3)
    journal_seal()
    pay(1)
    out = io.StringIO()

    call_command("verify_ledger", stdout=out, stderr=io.StringIO())

    head = JournalBlock.objects.get()
    assert f"journal: 1 sealed block(s), {head.entry_count} entries through id {head.last_entry_id}" in out.getvalue()
    assert "1 not yet sealed" in out.getvalue()


@pytest.mark.django_db
def test_beat_seals_every_minute_through_the_task(pay):
    schedule = PeriodicTask.objects.get(task="settlement.journal_seal")
    assert schedule.enabled and schedule.interval.every == 60 and schedule.interval.period == "seconds"
    pay(2)

    assert journal_seal_task() == {"blocks": 1, "entries": JournalEntry.objects.count(), "skipped": ""}


# --- tampering ------------------------------------------------------------------------------


@pytest.fixture
def sealed(pay):
    ids = pay(6)
    journal_seal(block_max_entries=4)
    assert journal_verify().ok
    return ids


@pytest.mark.django_db
def test_an_altered_memo_is_caught(sealed):
    tamper("UPDATE settlement_journalentry SET memo = 'nothing to see' WHERE id = %s", [sealed[2]])

    (breach,) = breaches()
    assert "were altered after sealing" in breach
    # The other invariants hold: only the seal can tell.
    report = ledger_verify()
    assert report.breaches == [breach]


@pytest.mark.django_db
def test_a_rewritten_amount_is_caught_even_when_the_books_still_balance(sealed):
    # Both legs and both balances changed together: invariants 1–3 still hold.
    entry = sealed[1]
    tamper("UPDATE settlement_posting SET amount = amount * 50 WHERE entry_id = %s", [entry])
    tamper(
        "UPDATE settlement_account a SET balance = a.balance + a.normal * p.amount * 49 / 50"
        " FROM settlement_posting p WHERE p.entry_id = %s AND p.account_id = a.id",
        [entry],
    )

    report = ledger_verify()
    assert len(report.breaches) == 1 and "were altered after sealing" in report.breaches[0]


@pytest.mark.django_db
def test_a_deleted_entry_is_caught(sealed):
    tamper("DELETE FROM settlement_posting WHERE entry_id = %s", [sealed[0]])
    tamper("DELETE FROM settlement_journalentry WHERE id = %s", [sealed[0]])

    assert any("number" in b and "sealed" in b for b in breaches())


@pytest.mark.django_db
def test_an_entry_slipped_into_a_sealed_range_is_caught(sealed, wallet):
    # An id inside a sealed block that no entry used (a rolled-back post leaves such gaps).
    block = JournalBlock.objects.order_by("number").first()
    used = set(JournalEntry.objects.values_list("id", flat=True))
    tamper(
        "INSERT INTO settlement_journalentry (id, public_id, idempotency_key, content_hash, kind, memo, metadata,"
        " created_at) SELECT %s, 'je_forged', 'forged', content_hash, kind, memo, metadata, created_at"
        " FROM settlement_journalentry WHERE id = %s",
        [max(used) + 1000, sealed[0]],
    )
    tamper("UPDATE settlement_journalblock SET last_entry_id = %s WHERE number = %s", [max(used) + 1000, block.number])

    assert breaches()


@pytest.mark.django_db
def test_a_block_rewritten_to_match_breaks_the_next_link(sealed):
    first, second = JournalBlock.objects.order_by("number")[:2]
    tamper("UPDATE settlement_journalentry SET memo = 'rewritten' WHERE id = %s", [sealed[0]])
    # The forger recomputes the first block's hash from the altered rows...
    tamper("DELETE FROM settlement_journalblock")
    journal_seal(block_max_entries=4)
    assert journal_verify().ok  # ...a chain rebuilt from scratch is self-consistent...
    rebuilt = JournalBlock.objects.get(number=1)

    # ...but its head no longer matches the head an auditor kept (the attestation records it).
    assert rebuilt.hash != first.hash
    assert JournalBlock.objects.get(number=2).hash != second.hash


@pytest.mark.django_db
def test_a_removed_block_breaks_the_chain(sealed):
    tamper("DELETE FROM settlement_journalblock WHERE number = 1")

    assert any("does not follow" in b for b in breaches())


@pytest.mark.django_db
def test_blocks_are_immutable(sealed):
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        raw("UPDATE settlement_journalblock SET hash = repeat('0', 64) WHERE number = 1")
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        raw("DELETE FROM settlement_journalblock")


@pytest.mark.django_db
def test_the_attestation_records_the_head_and_fails_on_a_broken_chain(sealed, tmp_path):
    # Yesterday's attestation: the custodian's live balance is not part of it (no bank needed).
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    call_command("attest_reserves", "--date", yesterday, output_dir=str(tmp_path), stdout=io.StringIO())
    (document,) = tmp_path.glob("*.json")
    head = JournalBlock.objects.order_by("-number").first()
    assert f'"head_hash": "{head.hash}"' in document.read_text()

    tamper("UPDATE settlement_journalentry SET memo = 'x' WHERE id = %s", [sealed[0]])
    with pytest.raises(CommandError, match="altered after sealing"):
        call_command("attest_reserves", "--date", yesterday, output_dir=str(tmp_path), stdout=io.StringIO())


# --- the horizon, with real concurrent transactions -------------------------------------------

concurrent = pytest.mark.django_db(
    transaction=True,
    available_apps=["corporates", "settlement", "django.contrib.auth", "django.contrib.contenttypes"],
)


@concurrent
def test_an_entry_still_in_flight_is_never_sealed_past(pay, make_pay):
    pay_elsewhere = make_pay()  # other accounts: the later post must not wait for the slow writer's locks
    inserted, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                pay(1)  # takes the lower id, commits last
                inserted.set()
                release.wait(30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert inserted.wait(30)
    later = pay_elsewhere(1)[0]  # a higher id, committed first

    skipped = journal_seal()
    assert skipped.blocks == 0 and skipped.skipped

    release.set()
    writer.join(30)
    assert not errors
    result = journal_seal()
    assert result.entries == JournalEntry.objects.count()
    assert JournalBlock.objects.order_by("-number").first().last_entry_id == later
    assert journal_verify().ok


@concurrent
def test_two_sealers_at_once_do_not_fork_the_chain(pay):
    pay(9)
    barrier = threading.Barrier(2, timeout=30)
    results, errors = [], []

    def seal() -> None:
        try:
            barrier.wait()
            results.append(journal_seal(block_max_entries=2))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    run_in_threads(seal, 2)

    assert not errors
    journal_seal(block_max_entries=2)  # whatever a loser left unsealed
    report = journal_verify()
    assert report.ok, report.breaches
    assert report.sealed_entries == JournalEntry.objects.count()
    assert JournalBlock.objects.count() == len(set(JournalBlock.objects.values_list("previous_hash", flat=True)))

"""Sealing the journal into hash-chained blocks (DESIGN.md invariant 4: the journal is tamper-evident).

The database already refuses UPDATE and DELETE on entries and postings, but
anyone who can disable a trigger (a superuser, a restored backup) could still
rewrite history. Sealing makes that detectable: every committed entry, with
its postings, goes into exactly one block, in id order, and each block's hash
covers its entries and the previous block's hash. ``journal_verify``
recomputes the chain from the stored rows; any altered, removed or inserted
entry or posting inside a sealed range breaks the block that covers it.

Blocks cover contiguous id ranges (``first_entry_id`` is the previous block's
``last_entry_id + 1``), so an entry slipped into a gap of a sealed range is
caught too. Sealing runs in the background (beat, every minute), never on the
posting path: posts pay nothing for it.

The one subtle point is the horizon. Entry ids come from a sequence, so a
transaction still in flight may hold an id lower than one already committed;
sealing past it would leave that entry outside every block for good. The
horizon is therefore read under a SHARE lock on the entry table, which waits
for every in-flight writer to finish (and holds new ones back for the instant
it is held): every id up to the horizon is then committed or gone. The wait
is bounded by ``lock_timeout``; when writers keep the table busy longer (a
netting batch's settlement), this run seals nothing and the next one tries
again. On SQLite a single writer commits at a time and ids only grow, so the
largest committed id is already a safe horizon.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from settlement.ledger.models import JournalBlock, JournalEntry, Posting

GENESIS_HASH = "0" * 64
BLOCK_MAX_ENTRIES = 10_000
HORIZON_LOCK_TIMEOUT_MS = 100


# --- the canonical form: what a block's hash covers ----------------------------------


def entry_canonical(entry: dict, postings: list[tuple]) -> bytes:
    """One entry and its postings as one canonical line (sorted keys, no whitespace)."""
    body = {
        "id": entry["id"],
        "public_id": entry["public_id"],
        "idempotency_key": entry["idempotency_key"],
        "content_hash": entry["content_hash"],
        "kind": entry["kind"],
        "memo": entry["memo"],
        "metadata": entry["metadata"],
        "reverses_id": entry["reverses_id"],
        "created_at": entry["created_at"].isoformat(),
        "postings": [list(p) for p in postings],  # (id, account_id, currency, amount), in id order
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def block_hash(
    *, number: int, first_entry_id: int, last_entry_id: int, entry_count: int, previous_hash: str, entries_digest: str
) -> str:
    header = f"{number}|{first_entry_id}|{last_entry_id}|{entry_count}|{previous_hash}|{entries_digest}"
    return hashlib.sha256(header.encode()).hexdigest()


@dataclass(frozen=True)
class RangeDigest:
    entry_count: int
    last_entry_id: int | None  # the largest id present in the range
    digest: str


def range_digest(first_entry_id: int, last_entry_id: int) -> RangeDigest:
    """SHA-256 over the canonical lines of every entry with first ≤ id ≤ last, in id order."""
    postings: dict[int, list[tuple]] = defaultdict(list)
    rows = (
        Posting.objects.filter(entry_id__gte=first_entry_id, entry_id__lte=last_entry_id)
        .order_by("entry_id", "id")
        .values_list("entry_id", "id", "account_id", "currency", "amount")
    )
    for entry_id, *posting in rows.iterator(chunk_size=20_000):
        postings[entry_id].append(tuple(posting))
    entries = (
        JournalEntry.objects.filter(id__gte=first_entry_id, id__lte=last_entry_id)
        .order_by("id")
        .values(
            "id",
            "public_id",
            "idempotency_key",
            "content_hash",
            "kind",
            "memo",
            "metadata",
            "reverses_id",
            "created_at",
        )
    )
    sha, count, last = hashlib.sha256(), 0, None
    for entry in entries.iterator(chunk_size=5_000):
        sha.update(entry_canonical(entry, postings.pop(entry["id"], [])))
        count, last = count + 1, entry["id"]
    # Postings whose entry is missing are part of the range too: hash them, so
    # that a deleted entry with its postings left behind still breaks the block.
    for entry_id in sorted(postings):
        sha.update(json.dumps({"orphan_postings_of": entry_id, "postings": postings[entry_id]}).encode() + b"\n")
    return RangeDigest(entry_count=count, last_entry_id=last, digest=sha.hexdigest())


# --- sealing ---------------------------------------------------------------------------


def committed_horizon() -> int | None:
    """The largest entry id below which every entry is committed for good, or None if writers stay busy."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                try:
                    with transaction.atomic():  # a savepoint: a lock timeout must not end the outer transaction
                        cursor.execute(f"SET LOCAL lock_timeout = '{HORIZON_LOCK_TIMEOUT_MS}ms'")
                        cursor.execute(f"LOCK TABLE {JournalEntry._meta.db_table} IN SHARE MODE")
                except OperationalError:
                    return None
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {JournalEntry._meta.db_table}")
            return cursor.fetchone()[0]


@dataclass
class SealResult:
    blocks: int = 0
    entries: int = 0
    skipped: str = ""  # why nothing could be sealed this time, if so


def journal_seal(*, max_blocks: int = 100, block_max_entries: int = BLOCK_MAX_ENTRIES) -> SealResult:
    """Seal committed, unsealed entries into new blocks chained to the last one (at most ``max_blocks``)."""
    result = SealResult()
    horizon = committed_horizon()
    if horizon is None:
        result.skipped = "writers held the journal longer than the lock timeout"
        return result
    for _ in range(max_blocks):
        latest = JournalBlock.objects.order_by("-number").values("number", "last_entry_id", "hash").first()
        number = latest["number"] + 1 if latest else 1
        first = latest["last_entry_id"] + 1 if latest else 1
        previous = latest["hash"] if latest else GENESIS_HASH
        if first > horizon:
            break
        last = _block_end(first=first, horizon=horizon, max_entries=block_max_entries)
        covered = range_digest(first, last)
        try:
            with transaction.atomic():
                JournalBlock.objects.create(
                    number=number,
                    first_entry_id=first,
                    last_entry_id=last,
                    entry_count=covered.entry_count,
                    previous_hash=previous,
                    hash=block_hash(
                        number=number,
                        first_entry_id=first,
                        last_entry_id=last,
                        entry_count=covered.entry_count,
                        previous_hash=previous,
                        entries_digest=covered.digest,
                    ),
                    sealed_at=timezone.now(),
                )
        except IntegrityError:
            # Another sealer appended this block first (two beat runs overlapping): let it go on.
            result.skipped = "another sealer is running"
            break
        result.blocks += 1
        result.entries += covered.entry_count
    return result


def _block_end(*, first: int, horizon: int, max_entries: int) -> int:
    """The last id of a block starting at ``first``: at most ``max_entries`` entries, never past the horizon."""
    ids = JournalEntry.objects.filter(id__gte=first, id__lte=horizon).order_by("id").values_list("id", flat=True)
    nth = list(ids[max_entries - 1 : max_entries])
    return nth[0] if nth else horizon


# --- verification --------------------------------------------------------------------


@dataclass
class JournalChainReport:
    blocks: int = 0
    sealed_entries: int = 0
    sealed_through_entry_id: int = 0
    head_hash: str = GENESIS_HASH
    unsealed_entries: int = 0
    breaches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaches


def journal_verify() -> JournalChainReport:
    """Recompute every block from the stored entries and postings; report each break in the chain."""
    report = JournalChainReport()
    previous_hash, expected_first = GENESIS_HASH, 1
    blocks = JournalBlock.objects.order_by("number").values_list(
        "number", "first_entry_id", "last_entry_id", "entry_count", "previous_hash", "hash"
    )
    for expected_number, (number, first, last, count, previous, stored) in enumerate(blocks.iterator(), start=1):
        if number != expected_number or first != expected_first or previous != previous_hash:
            report.breaches.append(
                f"journal block {number}: does not follow block {expected_number - 1}"
                f" (expected number {expected_number}, first entry {expected_first}, the previous block's hash)"
            )
        covered = range_digest(first, last)
        recomputed = block_hash(
            number=number,
            first_entry_id=first,
            last_entry_id=last,
            entry_count=covered.entry_count,
            previous_hash=previous,
            entries_digest=covered.digest,
        )
        if covered.entry_count != count:
            report.breaches.append(
                f"journal block {number}: entries {first}–{last} number {covered.entry_count}, sealed {count}"
            )
        elif recomputed != stored:
            report.breaches.append(f"journal block {number}: entries {first}–{last} were altered after sealing")
        previous_hash, expected_first = stored, last + 1
        report.blocks += 1
        report.sealed_entries += count
        report.sealed_through_entry_id = last
    report.head_hash = previous_hash
    report.unsealed_entries = JournalEntry.objects.filter(id__gte=expected_first).count()
    return report

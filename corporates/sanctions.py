"""Sanctions screening: applicants, their beneficial owners and bank-account holders.

Names are compared after normalisation (Unicode accents stripped, case
folded, punctuation dropped, legal-form words such as "Ltd" removed) with
rapidfuzz's ``token_sort_ratio``, which ignores word order ("Núñez, José"
scores 100 against "JOSE NUNEZ"), and with the spaces removed, which ignores
how a romanised name is split ("Zhao Ming De" against "Zhao Mingde"). A score at or above
settings.SANCTIONS_MATCH_THRESHOLD (0–100) becomes a ``SanctionsAlert`` for the
back office, who clears it as a false positive or confirms it; a confirmed
hit freezes the enterprise (or rejects it while it is still an applicant).

Screening runs when an enterprise applies, when a bank account is
registered, and for every party whenever the list is reloaded. The same match
found again raises no second alert, and does not reopen one the back office
has cleared.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone
from rapidfuzz import fuzz, process

from config.db import is_postgresql, run_in_transaction
from config.errors import DomainError
from corporates.models import (
    AlertStatus,
    BankAccount,
    BankAccountStatus,
    BeneficialOwner,
    Enterprise,
    EnterpriseStatus,
    PartyKind,
    SanctionsAlert,
    SanctionsEntry,
    SanctionsListLoad,
)
from corporates.onboarding.status import enterprise_freeze, enterprise_reject, reason_require
from corporates.permissions import back_office_require

CSV_COLUMNS = ("name", "aliases", "country", "list_source")
ALIAS_SEPARATOR = ";"

# Letters that Unicode does not decompose into a base letter plus an accent.
_FOLD = str.maketrans({"ø": "o", "đ": "d", "ð": "d", "ł": "l", "æ": "ae", "œ": "oe", "þ": "th", "ı": "i"})
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
# Legal forms say nothing about who the party is; "Acme Trading Ltd" is "Acme Trading Limited".
LEGAL_FORM_WORDS = frozenset(
    {"ltd", "limited", "llc", "inc", "incorporated", "co", "corp", "corporation", "company", "plc", "gmbh", "sa",
     "ag", "bv", "nv", "pte", "pty", "llp", "lp", "sarl", "srl", "spa", "oy", "ab", "as", "kk", "the"}
)  # fmt: skip


class SanctionsListInvalid(DomainError):
    code = "sanctions_list_invalid"
    title = "The sanctions list file is not in the expected CSV format."
    http_status = 400


class SanctionsAlertNotOpen(DomainError):
    code = "sanctions_alert_not_open"
    title = "The sanctions alert has already been resolved."


def name_normalise(name: str) -> str:
    """Accent-, case- and punctuation-insensitive form of a name, legal-form words removed."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    folded = stripped.casefold().translate(_FOLD)
    words = _NON_ALNUM.sub(" ", folded).split()
    meaningful = [word for word in words if word not in LEGAL_FORM_WORDS]
    return " ".join(meaningful or words)


def _score(first: str, second: str, **_: object) -> float:
    """Score two normalised names: word order ignored, and word breaks too.

    Romanised names split differently ("Zhao Ming De", "Zhao Mingde"), so the
    names are also compared with their spaces removed; the better score wins.
    """
    return max(
        fuzz.token_sort_ratio(first, second, processor=None),
        fuzz.ratio(first.replace(" ", ""), second.replace(" ", ""), processor=None),
    )


def name_match_score(first: str, second: str) -> Decimal:
    """0–100: how alike two names are, ignoring accents, case, punctuation and word order."""
    return Decimal(str(round(_score(name_normalise(first), name_normalise(second)), 2)))


@dataclass(frozen=True)
class Party:
    enterprise: Enterprise
    kind: str
    ref: str
    name: str


@dataclass(frozen=True)
class _ListedName:
    entry: SanctionsEntry
    name: str
    normalised: str


# One advisory-lock key stands for "the sanctions list": a reload holds it
# exclusively until it commits, every screening holds it shared until its own
# transaction ends. Without it, a party created while a reload runs could be
# screened against the old list and missed by the reload's re-screening.
_LIST_LOCK_KEY = 0x5341_4E43  # "SANC"


def _list_lock(*, exclusive: bool) -> None:
    if not is_postgresql():
        return  # SQLite runs one writing transaction at a time already
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [_LIST_LOCK_KEY])


# A load's entries never change (a reload is a new load), so each process
# normalises a list once, not on every screening (every redemption screens its
# payee): {(load id, loaded at): names}, holding only the current load. The
# time is in the key so that a test database's reused ids cannot match.
_names_by_load: dict[tuple, list[_ListedName]] = {}


def _listed_names() -> list[_ListedName]:
    """Every name and alias of the current list, normalised (once per load and process)."""
    _list_lock(exclusive=False)
    load = _current_load()
    if load is None:
        return []
    key = (load.pk, load.loaded_at)
    cached = _names_by_load.get(key)
    if cached is not None:
        return cached
    names: list[_ListedName] = []
    for entry in SanctionsEntry.objects.filter(load=load).order_by("id"):
        for name in [entry.name, *entry.aliases]:
            if name_normalise(name):
                names.append(_ListedName(entry=entry, name=name, normalised=name_normalise(name)))
    _names_by_load.clear()
    _names_by_load[key] = names
    return names


def _current_load() -> SanctionsListLoad | None:
    # Plain SQL: every redemption request screens its payee, and compiling the
    # queryset cost more than the query.
    found = list(
        SanctionsListLoad.objects.raw(
            "SELECT * FROM corporates_sanctionslistload ORDER BY loaded_at DESC, id DESC LIMIT 1"
        )
    )
    return found[0] if found else None


def _fingerprint(party: Party, entry: SanctionsEntry) -> str:
    key = "|".join(
        [party.kind, name_normalise(party.name), name_normalise(entry.name), entry.list_source, entry.country]
    )
    return hashlib.sha256(key.encode()).hexdigest()


def _screen(parties: Iterable[Party], listed: list[_ListedName]) -> list[SanctionsAlert]:
    """Raise an alert for each party's best match per listed entry at or above the threshold."""
    if not listed:
        return []
    threshold = min(max(float(settings.SANCTIONS_MATCH_THRESHOLD), 0.0), 100.0)
    # The two halves of _score, each run by rapidfuzz's C scorers over the whole list.
    passes = (
        (fuzz.token_sort_ratio, [item.normalised for item in listed], lambda name: name),
        (fuzz.ratio, [item.normalised.replace(" ", "") for item in listed], lambda name: name.replace(" ", "")),
    )
    raised: list[SanctionsAlert] = []
    for party in parties:
        query = name_normalise(party.name)
        if not query:
            continue
        best: dict[int, tuple[float, _ListedName]] = {}
        for scorer, choices, prepare in passes:
            for _choice, score, index in process.extract(
                prepare(query), choices, scorer=scorer, processor=None, score_cutoff=threshold, limit=None
            ):
                item = listed[index]
                if item.entry.id not in best or score > best[item.entry.id][0]:
                    best[item.entry.id] = (score, item)
        for score, item in best.values():
            alert, created = SanctionsAlert.objects.get_or_create(
                party_ref=party.ref,
                fingerprint=_fingerprint(party, item.entry),
                defaults={
                    "enterprise": party.enterprise,
                    "party_kind": party.kind,
                    "screened_name": party.name,
                    "entry": item.entry,
                    "entry_name": item.entry.name,
                    "entry_country": item.entry.country,
                    "entry_list_source": item.entry.list_source,
                    "matched_name": item.name,
                    "score": Decimal(str(round(score, 2))),
                },
            )
            if created:
                raised.append(alert)
    return raised


def _parties_of(enterprise: Enterprise) -> list[Party]:
    parties = [Party(enterprise, PartyKind.ENTERPRISE, enterprise.public_id, enterprise.legal_name)]
    parties += [
        Party(enterprise, PartyKind.BENEFICIAL_OWNER, owner.public_id, owner.full_name)
        for owner in BeneficialOwner.objects.filter(enterprise=enterprise)
    ]
    parties += [
        Party(enterprise, PartyKind.BANK_ACCOUNT_HOLDER, account.public_id, account.holder_name)
        for account in BankAccount.objects.filter(enterprise=enterprise).exclude(status=BankAccountStatus.DISABLED)
    ]
    return parties


def sanctions_screen_enterprise(*, enterprise: Enterprise) -> list[SanctionsAlert]:
    """Screen the applicant's name, its beneficial owners and its bank-account holders."""
    return run_in_transaction(lambda: _screen(_parties_of(enterprise), _listed_names()))


def sanctions_screen_bank_account(*, bank_account: BankAccount) -> list[SanctionsAlert]:
    party = Party(
        bank_account.enterprise, PartyKind.BANK_ACCOUNT_HOLDER, bank_account.public_id, bank_account.holder_name
    )
    return run_in_transaction(lambda: _screen([party], _listed_names()))


def sanctions_screen_all() -> list[SanctionsAlert]:
    """Screen every party of every enterprise not rejected (after a list reload)."""

    def screen_all() -> list[SanctionsAlert]:
        listed = _listed_names()
        raised: list[SanctionsAlert] = []
        for enterprise in Enterprise.objects.exclude(status=EnterpriseStatus.REJECTED).order_by("id"):
            raised += _screen(_parties_of(enterprise), listed)
        return raised

    return run_in_transaction(screen_all)


@dataclass(frozen=True)
class ListRow:
    name: str
    aliases: list[str]
    country: str
    list_source: str


def sanctions_list_parse(text: str) -> list[ListRow]:
    """Parse the CSV (see corporates/data/README.md): header ``name,aliases,country,list_source``.

    Aliases are separated by ``;``. Lines starting with ``#`` are comments.
    """
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    if reader.fieldnames is None or tuple(name.strip() for name in reader.fieldnames) != CSV_COLUMNS:
        raise SanctionsListInvalid(f"The header must be exactly: {','.join(CSV_COLUMNS)}.")
    rows: list[ListRow] = []
    for number, record in enumerate(reader, start=2):
        if None in record or any(value is None for value in record.values()):
            raise SanctionsListInvalid(f"Row {number} does not have {len(CSV_COLUMNS)} columns.")
        name = record["name"].strip()
        list_source = record["list_source"].strip()
        if not name or not list_source:
            raise SanctionsListInvalid(f"Row {number} needs a name and a list source.")
        aliases = [alias.strip() for alias in record["aliases"].split(ALIAS_SEPARATOR) if alias.strip()]
        rows.append(ListRow(name=name, aliases=aliases, country=record["country"].strip(), list_source=list_source))
    if not rows:
        raise SanctionsListInvalid("The list has no entries.")
    return rows


@dataclass(frozen=True)
class ListLoadResult:
    load: SanctionsListLoad
    alerts: list[SanctionsAlert]


def sanctions_list_load(*, path: Path | str) -> ListLoadResult:
    """Replace the list with the file's entries and re-screen everyone, in one transaction.

    Either the new list is in force and everyone has been screened against
    it, or nothing changed.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SanctionsListInvalid(f"Cannot read {path}: {exc}")
    rows = sanctions_list_parse(text)

    def load() -> ListLoadResult:
        _list_lock(exclusive=True)
        new_load = SanctionsListLoad.objects.create(
            source=str(path), sha256=hashlib.sha256(raw).hexdigest(), entry_count=len(rows)
        )
        SanctionsEntry.objects.bulk_create(
            SanctionsEntry(
                load=new_load, name=row.name, aliases=row.aliases, country=row.country, list_source=row.list_source
            )
            for row in rows
        )
        # Alerts keep a snapshot of what they matched; the old entries can go.
        SanctionsEntry.objects.exclude(load=new_load).delete()
        return ListLoadResult(load=new_load, alerts=sanctions_screen_all())

    return run_in_transaction(load)


def sanctions_list_ensure(*, path: Path | str) -> ListLoadResult | None:
    """Load the file unless the list in force is already its exact content (same SHA-256); None then.

    For start-up and demo data (seed_demo), which run again and again: a rerun
    adds no load and screens nobody again. The back office's explicit reload
    (``manage.py load_sanctions``) always loads.
    """
    path = Path(path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise SanctionsListInvalid(f"Cannot read {path}: {exc}")

    def ensure() -> ListLoadResult | None:
        # Held to the end: two concurrent starts load the file once.
        _list_lock(exclusive=True)
        current = _current_load()
        if current is not None and current.sha256 == digest:
            return None
        return sanctions_list_load(path=path)

    return run_in_transaction(ensure)


def _resolve(alert: SanctionsAlert, status: str, reason: str, actor: AbstractBaseUser | None) -> SanctionsAlert:
    reason = reason_require(reason)
    if actor is not None:
        back_office_require(actor=actor)  # alerts are the back office's to decide
    locked = SanctionsAlert.objects.select_for_update().get(pk=alert.pk)
    if locked.status != AlertStatus.OPEN:
        raise SanctionsAlertNotOpen(f"Alert {locked.public_id} is already {locked.status}.")
    locked.status = status
    locked.resolution_reason = reason
    locked.resolved_at = timezone.now()
    locked.resolved_by = actor
    locked.save(update_fields=["status", "resolution_reason", "resolved_at", "resolved_by"])
    return locked


def sanctions_alert_clear(
    *, alert: SanctionsAlert, reason: str, actor: AbstractBaseUser | None = None
) -> SanctionsAlert:
    """The back office judged the match a false positive."""
    return run_in_transaction(lambda: _resolve(alert, AlertStatus.CLEARED, reason, actor))


def sanctions_alert_confirm(
    *, alert: SanctionsAlert, reason: str, actor: AbstractBaseUser | None = None
) -> SanctionsAlert:
    """A true hit: the enterprise is frozen (rejected if still an applicant), a matched bank account disabled."""

    def confirm() -> SanctionsAlert:
        resolved = _resolve(alert, AlertStatus.CONFIRMED, reason, actor)
        # The enterprise sees this reason on its status page: name the alert, not the list entry.
        why = f"Compliance screening decision ({resolved.public_id}): "
        enterprise = Enterprise.objects.select_for_update().get(pk=resolved.enterprise_id)
        if enterprise.status == EnterpriseStatus.APPROVED:
            enterprise_freeze(enterprise=enterprise, reason=why + resolved.resolution_reason, actor=actor)
        elif enterprise.status in (EnterpriseStatus.APPLIED, EnterpriseStatus.UNDER_REVIEW):
            enterprise_reject(enterprise=enterprise, reason=why + resolved.resolution_reason, actor=actor)
        if resolved.party_kind == PartyKind.BANK_ACCOUNT_HOLDER:
            from corporates.onboarding.banking import bank_account_disable

            account = BankAccount.objects.filter(public_id=resolved.party_ref).first()
            if account is not None and account.status != BankAccountStatus.DISABLED:
                bank_account_disable(bank_account=account, reason=why + resolved.resolution_reason, actor=actor)
        return resolved

    return run_in_transaction(confirm)

"""seed_demo (make run) loads the shipped sanctions list, once per file content, so the demo screens against it."""

from __future__ import annotations

import io
import threading

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from corporates.models import SanctionsAlert, SanctionsEntry, SanctionsListLoad
from corporates.sanctions import sanctions_list_ensure, sanctions_list_parse
from tests.concurrency import run_in_threads
from tests.corporates.conftest import SANCTIONS_CSV


def seed() -> None:
    call_command("seed_demo", stdout=io.StringIO())


@pytest.mark.django_db
def test_seed_demo_loads_the_shipped_list_once(apply):
    shipped = sanctions_list_parse(settings.SANCTIONS_LIST_PATH.read_text(encoding="utf-8"))

    seed()
    seed()  # make run seeds at every start

    load = SanctionsListLoad.objects.get()
    assert load.source == str(settings.SANCTIONS_LIST_PATH)
    assert load.entry_count == len(shipped) == SanctionsEntry.objects.count()
    # The demo enterprises are screened against it and are clean.
    assert not SanctionsAlert.objects.exists()
    # Applicants are screened against it from the first start.
    flagged = apply(legal_name="Blackwater Maritime Trading Limited").enterprise
    assert SanctionsAlert.objects.filter(enterprise=flagged, entry_list_source="HL-DEMO-UN").exists()


@pytest.mark.django_db
def test_ensure_loads_again_only_when_the_content_changed(write_sanctions_csv):
    path = write_sanctions_csv(SANCTIONS_CSV)
    first = sanctions_list_ensure(path=path)
    assert first is not None and first.load.entry_count == 3
    assert sanctions_list_ensure(path=path) is None

    path.write_text(SANCTIONS_CSV + "Northwind Shell Holdings,,KY,TEST-UN\n", encoding="utf-8")
    again = sanctions_list_ensure(path=path)
    assert again is not None and again.load.entry_count == 4
    assert SanctionsListLoad.objects.count() == 2
    assert SanctionsEntry.objects.count() == 4  # the list in force only


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_load_the_list_once(write_sanctions_csv):
    path = write_sanctions_csv(SANCTIONS_CSV)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait()
            sanctions_list_ensure(path=path)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)
        finally:
            connection.close()

    run_in_threads(start, 2)
    assert errors == []
    assert SanctionsListLoad.objects.count() == 1
    assert SanctionsEntry.objects.count() == 3

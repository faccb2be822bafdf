"""Obligations: creation one by one and in bulk (all or nothing, per-row errors), cancel, approve."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from config.errors import DomainError
from corporates.models import EnterpriseStatus, MemberRole
from corporates.onboarding.limits import enterprise_limits_set
from corporates.services import EnterpriseNotActive
from settlement.obligations.models import Obligation, ObligationStatus
from settlement.obligations.services import (
    ObligationInvalid,
    ObligationNotCancellable,
    ObligationsInvalid,
    TooManyRows,
    obligation_approve,
    obligation_cancel,
    obligation_create,
    obligations_create_bulk,
    public_ids_new,
)
from tests.factories import EnterpriseFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def today() -> str:
    return timezone.localdate().isoformat()


def row(payee, ref: str, amount: str = "100.00", currency: str = "HKD", **extra) -> dict:
    return {
        "payee": payee.public_id if hasattr(payee, "public_id") else payee,
        "amount": amount,
        "currency": currency,
        "value_date": today(),
        "external_reference": ref,
        **extra,
    }


def test_bulk_creates_every_row_in_minor_units(make_enterprise):
    payer, payee, other = make_enterprise(), make_enterprise(), make_enterprise()

    result = obligations_create_bulk(
        payer=payer,
        rows=[row(payee, "INV-1", "1250.50"), row(other, "INV-2", "0.01", "CNH", memo="freight")],
    )

    assert result.created == 2
    first, second = (Obligation.objects.get(public_id=pid) for pid in result.public_ids)
    assert (first.payer, first.payee, first.amount, first.currency) == (payer, payee, 125_050, "HKD")
    assert (second.amount, second.currency, second.memo) == (1, "CNH", "freight")
    assert first.status == ObligationStatus.PENDING and not first.needs_approval
    assert first.public_id.startswith("obl_") and len(first.public_id) == 32


def test_bulk_with_any_bad_row_creates_nothing_and_names_every_error(make_enterprise):
    payer, payee = make_enterprise(), make_enterprise()
    applicant = EnterpriseFactory(status=EnterpriseStatus.APPLIED)
    obligation_create(
        payer=payer,
        payee=payee.public_id,
        amount="1.00",
        currency="HKD",
        value_date=today(),
        external_reference="TAKEN",
    )
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()

    rows = [
        row(payee, "OK-1"),
        row("ent_doesnotexist", "R-1"),
        row(applicant, "R-2"),
        row(payer, "R-3"),
        row(payee, "R-4", amount=1.5),
        row(payee, "R-5", amount="1.001"),
        row(payee, "R-6", currency="EUR"),
        row(payee, "R-7", amount="0.00"),
        row(payee, "TAKEN"),
        row(payee, "DUP"),
        row(payee, "DUP"),
        {**row(payee, "R-10"), "value_date": yesterday},
        {**row(payee, "R-11"), "value_date": "22/11/2026"},
        row(payee, "R-12", amount="50000000.01"),
        row(payee, ""),
        row("ent_\x00", "R-15"),
        row(payee, "NUL\x00REF"),
    ]
    with pytest.raises(ObligationsInvalid) as caught:
        obligations_create_bulk(payer=payer, rows=rows)

    codes = {(e.row, e.code) for e in caught.value.errors}
    assert codes == {
        (1, "payee_unknown"),
        (2, "payee_inactive"),
        (3, "payee_is_payer"),
        (4, "amount_not_string"),
        (5, "amount_too_precise"),
        (6, "unknown_currency"),
        (7, "amount_not_positive"),
        (8, "duplicate_external_reference"),
        (10, "duplicate_external_reference"),
        (11, "value_date_past"),
        (12, "value_date_invalid"),
        (13, "over_single_payment_limit"),
        (14, "external_reference_invalid"),
        (15, "payee_unknown"),
        (16, "external_reference_invalid"),
    }
    assert Obligation.objects.count() == 1  # only TAKEN, from before


def test_single_create_raises_the_row_code(make_enterprise):
    payer = make_enterprise()
    with pytest.raises(ObligationInvalid) as caught:
        obligation_create(
            payer=payer,
            payee=payer.public_id,
            amount="1.00",
            currency="USD",
            value_date=today(),
            external_reference="X",
        )
    assert caught.value.code == "payee_is_payer"


def test_a_frozen_payer_creates_nothing(make_enterprise):
    payer, payee = make_enterprise(), make_enterprise()
    payer.status = EnterpriseStatus.FROZEN
    payer.save()
    with pytest.raises(EnterpriseNotActive):
        obligations_create_bulk(payer=payer, rows=[row(payee, "A")])


def test_references_are_per_payer(make_enterprise):
    a, b, c = make_enterprise(), make_enterprise(), make_enterprise()
    obligations_create_bulk(payer=a, rows=[row(c, "INV-9")])
    obligations_create_bulk(payer=b, rows=[row(c, "INV-9")])
    assert Obligation.objects.filter(external_reference="INV-9").count() == 2


def test_too_many_rows_is_refused(make_enterprise, settings):
    settings.OBLIGATION_BULK_MAX_ROWS = 2
    payer, payee = make_enterprise(), make_enterprise()
    with pytest.raises(TooManyRows):
        obligations_create_bulk(payer=payer, rows=[row(payee, f"R{i}") for i in range(3)])


def test_the_payer_cancels_a_pending_obligation_but_not_one_in_a_batch(make_enterprise):
    payer, payee = make_enterprise(), make_enterprise()
    first = obligation_create(
        payer=payer, payee=payee.public_id, amount="5.00", currency="HKD", value_date=today(), external_reference="C-1"
    )
    with pytest.raises(ObligationNotCancellable):
        obligation_cancel(obligation=first, payer=payee)

    cancelled = obligation_cancel(obligation=first, payer=payer)
    assert cancelled.status == ObligationStatus.CANCELLED and cancelled.cancelled_at is not None
    with pytest.raises(ObligationNotCancellable):
        obligation_cancel(obligation=first, payer=payer)


def test_above_the_threshold_a_checker_other_than_the_maker_approves(make_enterprise, settings):
    payer, payee = make_enterprise(), make_enterprise()
    enterprise_limits_set(
        enterprise=payer, currency="HKD", single_payment="5000.00", daily_redemption=None, approval_threshold="1000.00"
    )
    maker = MembershipFactory(enterprise=payer, role=MemberRole.CHECKER).user
    checker = MembershipFactory(enterprise=payer, role=MemberRole.CHECKER).user
    outsider = MembershipFactory(enterprise=payee, role=MemberRole.CHECKER).user
    viewer = MembershipFactory(enterprise=payer, role=MemberRole.VIEWER).user
    big = obligation_create(
        payer=payer,
        payee=payee.public_id,
        amount="1000.01",
        currency="HKD",
        value_date=today(),
        external_reference="BIG",
        created_by=maker,
    )
    small = obligation_create(
        payer=payer,
        payee=payee.public_id,
        amount="1000.00",
        currency="HKD",
        value_date=today(),
        external_reference="SMALL",
        created_by=maker,
    )
    assert big.needs_approval and not small.needs_approval

    for user, code in ((maker, "checker_is_maker"), (outsider, "role_not_permitted"), (viewer, "role_not_permitted")):
        with pytest.raises(DomainError) as refused:
            obligation_approve(obligation=big, approver=user)
        assert refused.value.code == code
    approved = obligation_approve(obligation=big, approver=checker)

    assert not approved.needs_approval and approved.approved_by == checker and approved.approved_at


def test_public_ids_are_distinct_and_well_formed():
    ids = public_ids_new("obl", 5_000)
    assert len(set(ids)) == 5_000
    assert all(len(i) == 32 and i.startswith("obl_") and i[4:].isalnum() for i in ids)


def test_public_ids_of_a_later_request_sort_after_the_earlier_ones():
    """Time first (as a UUIDv7), so that new rows go to the right edge of the public_id index."""
    first = public_ids_new("obl", 3)
    time.sleep(0.002)
    later = public_ids_new("obl", 3)

    assert max(first) < min(later)
    assert len({i[:12] for i in first}) == 1  # one request, one time prefix; the rest is random


# --- the database's own check of the references (triggers, migration 0016) -------------------------


def _raw(sql: str, params: list) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)


_RAW_OBLIGATION = (
    "INSERT INTO settlement_obligation (public_id, payer_id, payee_id, currency, amount, value_date,"
    " external_reference, memo, status, needs_approval, created_by_id, reason, roll_count, created_at, updated_at)"
    " VALUES (%s, %s, %s, 'HKD', 100, now(), %s, '', 'pending', false, %s, '', 0, now(), now())"
)


@pytest.mark.parametrize(
    ("who", "error"),
    [("payee", "enterprise_not_found"), ("payer", "enterprise_not_found"), ("maker", "user_not_found")],
)
def test_the_database_refuses_an_obligation_naming_a_missing_enterprise_or_user(make_enterprise, who, error):
    from django.db import IntegrityError, transaction

    payer, payee = make_enterprise(), make_enterprise()
    ids = {"payer": payer.pk, "payee": payee.pk, "maker": None}
    ids[who] = 999_999_999

    with pytest.raises(IntegrityError, match=f"hl_obligation:{error}"), transaction.atomic():
        _raw(_RAW_OBLIGATION, ["obl_raw", ids["payer"], ids["payee"], "RAW-1", ids["maker"]])

    assert not Obligation.objects.filter(public_id="obl_raw").exists()


def test_the_database_refuses_to_point_an_obligation_at_a_missing_checker(make_enterprise):
    from django.db import IntegrityError, transaction

    payer, payee = make_enterprise(), make_enterprise()
    result = obligations_create_bulk(payer=payer, rows=[row(payee, "INV-1")])

    with pytest.raises(IntegrityError, match="hl_obligation:user_not_found"), transaction.atomic():
        _raw("UPDATE settlement_obligation SET approved_by_id = 999999999 WHERE public_id = %s", [result.public_ids[0]])


def test_no_before_update_row_trigger_on_the_tables_updated_in_bulk():
    """A BEFORE UPDATE row trigger, even one that never fires, makes PostgreSQL lock every updated row first
    (one more WAL record per row): a netting batch updates a million obligations, every post its accounts."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal"
            " AND tgrelid IN ('settlement_obligation'::regclass, 'settlement_account'::regclass)"
            " AND tgtype & 1 = 1 AND tgtype & 2 = 2 AND tgtype & 16 = 16"  # row, before, update
        )
        assert cursor.fetchall() == []


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM corporates_enterprise WHERE id = %s",
        "UPDATE corporates_enterprise SET id = id + 1000000 WHERE id = %s",
    ],
)
def test_the_database_refuses_to_delete_or_renumber_an_enterprise_that_obligations_name(make_enterprise, sql):
    from django.db import IntegrityError, transaction

    payer, payee = make_enterprise(), make_enterprise()
    obligations_create_bulk(payer=payer, rows=[row(payee, "INV-1")])

    for side in (payer, payee):
        with pytest.raises(IntegrityError, match="hl_obligation:enterprise_referenced"), transaction.atomic():
            _raw(sql, [side.pk])

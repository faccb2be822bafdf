"""The back office's netting pages: batches and obligations render, read-only; the schedules exist."""

from __future__ import annotations

import importlib
import re

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from settlement.netting.services import batch_open, batch_run
from settlement.obligations.services import obligations_create_bulk

pytestmark = pytest.mark.django_db


def test_batches_and_obligations_render_in_admin(admin_client, make_enterprise, mint):
    from django.utils import timezone

    a, b = make_enterprise(), make_enterprise()
    mint(a, "10.00")
    row = {"payee": b.public_id, "amount": "4.00", "currency": "HKD", "value_date": timezone.localdate().isoformat(),
           "external_reference": "ADM-1"}  # fmt: skip
    obligation_id = obligations_create_bulk(payer=a, rows=[row]).public_ids[0]
    batch = batch_run(batch_id=batch_open().pk)

    batches = admin_client.get("/admin/settlement/nettingbatch/")
    obligations = admin_client.get("/admin/settlement/obligation/")
    detail = admin_client.get(f"/admin/settlement/nettingbatch/{batch.pk}/change/")

    assert batches.status_code == 200 and batch.public_id in batches.content.decode()
    assert obligations.status_code == 200 and obligation_id in obligations.content.decode()
    assert detail.status_code == 200 and "efficiency_bilateral_pct" in detail.content.decode()


def test_the_cutoff_schedules_are_there_for_the_back_office():
    # The data migration made them; a transactional test may have flushed the
    # table since, so apply it again (it is idempotent).
    from django.apps import apps

    importlib.import_module("settlement.migrations.0010_netting_cutoff_schedules").forwards(apps, None)

    tasks = dict(PeriodicTask.objects.filter(task="netting.cutoff").values_list("name", "enabled"))
    assert tasks == {"netting: cut-off every 15 minutes": True, "netting: daily 16:00 Hong Kong cut-off": True}
    daily = PeriodicTask.objects.get(name="netting: daily 16:00 Hong Kong cut-off").crontab
    assert (daily.hour, daily.minute, str(daily.timezone)) == ("16", "0", "Asia/Hong_Kong")


# --- "Run a cut-off now": a button on the batches changelist --------------------------------

RUN_CUTOFF_URL = "/admin/settlement/nettingbatch/run-cutoff/"


@pytest.fixture
def eager_tasks():
    """The queued cut-off task runs in-process, so that a test sees its batch."""
    from config.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture
def staff_user(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username="ops", password="x", is_staff=True)


def _staff_client(user, **client_kwargs):
    from django.test import Client

    from tests.two_factor import force_login_verified

    return force_login_verified(Client(**client_kwargs), user)


def _grant(user, *codenames: str) -> None:
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="settlement", codename__in=codenames))


def test_the_button_runs_a_cutoff_on_a_fresh_install(admin_client, make_enterprise, mint, eager_tasks):
    from settlement.netting.models import BatchStatus, NettingBatch

    a, b = make_enterprise(), make_enterprise()
    mint(a, "10.00")
    row = {"payee": b.public_id, "amount": "4.00", "currency": "HKD", "value_date": timezone.localdate().isoformat(),
           "external_reference": "ADM-2"}  # fmt: skip
    obligations_create_bulk(payer=a, rows=[row])
    assert not NettingBatch.objects.exists()  # nothing to select: an admin action could not run

    page = admin_client.get("/admin/settlement/nettingbatch/")
    assert page.status_code == 200
    assert RUN_CUTOFF_URL in page.content.decode() and "Run a cut-off now" in page.content.decode()

    response = admin_client.post(RUN_CUTOFF_URL, follow=True)

    assert response.redirect_chain[-1][0] == "/admin/settlement/nettingbatch/"
    assert "A cut-off is queued" in response.content.decode()
    batch = NettingBatch.objects.get()
    assert (batch.status, batch.trigger) == (BatchStatus.COMPLETED, "manual: admin")
    assert batch.report["obligations"]["settled"] == 1


def test_staff_with_the_permission_may_run_a_cutoff(staff_user, eager_tasks, platform):
    from settlement.netting.models import NettingBatch

    _grant(staff_user, "view_nettingbatch", "run_cutoff")
    client = _staff_client(staff_user)

    assert "Run a cut-off now" in client.get("/admin/settlement/nettingbatch/").content.decode()
    assert client.post(RUN_CUTOFF_URL).status_code == 302
    assert NettingBatch.objects.get().trigger == "manual: ops"


def test_staff_without_the_permission_see_no_button_and_are_refused(staff_user, eager_tasks):
    from settlement.netting.models import NettingBatch

    _grant(staff_user, "view_nettingbatch")
    client = _staff_client(staff_user)

    assert "Run a cut-off now" not in client.get("/admin/settlement/nettingbatch/").content.decode()
    assert client.post(RUN_CUTOFF_URL).status_code == 403
    assert not NettingBatch.objects.exists()


def test_the_button_takes_only_a_post_with_its_csrf_token_from_verified_staff(admin_user, eager_tasks):
    from django.test import Client

    from settlement.netting.models import NettingBatch

    strict = _staff_client(admin_user, enforce_csrf_checks=True)
    unverified = Client()
    unverified.force_login(admin_user, backend="django.contrib.auth.backends.ModelBackend")

    assert strict.get(RUN_CUTOFF_URL).status_code == 405
    assert strict.post(RUN_CUTOFF_URL).status_code == 403  # no CSRF token
    assert unverified.post(RUN_CUTOFF_URL).status_code == 302  # to sign-in / two-factor, not run
    assert not NettingBatch.objects.exists()

    page = strict.get("/admin/settlement/nettingbatch/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert strict.post(RUN_CUTOFF_URL, {"csrfmiddlewaretoken": token}).status_code == 302  # the button's own form
    assert NettingBatch.objects.count() == 1

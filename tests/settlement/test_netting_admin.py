"""The back office's netting pages: batches and obligations render, read-only; the schedules exist."""

from __future__ import annotations

import importlib

import pytest
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

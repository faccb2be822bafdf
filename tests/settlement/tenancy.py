"""Objects of settlement for the tenant-isolation walk (tests/api/test_tenancy.py): enterprise A's, by public id."""

from __future__ import annotations

from django.utils import timezone

from corporates.models import Enterprise
from corporates.services import enterprise_approve
from tests.factories import EnterpriseFactory


def _counterparty() -> Enterprise:
    return enterprise_approve(enterprise=EnterpriseFactory())


def _obligation(enterprise: Enterprise) -> str:
    from settlement.obligations.services import obligations_create_bulk

    row = {
        "payee": _counterparty().public_id,
        "amount": "12.34",
        "currency": "HKD",
        "value_date": timezone.localdate().isoformat(),
        "external_reference": "TENANCY-1",
    }
    return obligations_create_bulk(payer=enterprise, rows=[row]).public_ids[0]


def _netting_batch(enterprise: Enterprise) -> str:
    from settlement.netting.services import batch_open, batch_run
    from settlement.obligations.services import obligations_create_bulk

    row = {
        "payee": enterprise.public_id,
        "amount": "1.00",
        "currency": "USD",
        "value_date": timezone.localdate().isoformat(),
        "external_reference": "TENANCY-NETTING",
    }
    obligations_create_bulk(payer=_counterparty(), rows=[row])
    return batch_run(batch_id=batch_open().pk).public_id  # the counterparty cannot pay: the pair rolls


TENANT_OBJECT_FACTORIES = {
    "settlement.Obligation": _obligation,
    "settlement.NettingBatch": _netting_batch,
}

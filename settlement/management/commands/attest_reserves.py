"""python manage.py attest_reserves --date D — the signed-off reserve attestation, as JSON and HTML.

Writes ``reserves-attestation-D.json`` (the document, its SHA-256 and the
platform's signature) and ``reserves-attestation-D.html`` (the same, for an
auditor to read) to RESERVES_ATTESTATION_DIR or ``--output-dir``. Exits 1 when
the ledger's invariants do not hold or the custodian does not reconcile.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.template.loader import render_to_string
from django.utils import timezone

from settlement.reserves import reserves_attestation_build


class Command(BaseCommand):
    help = "Write the reserve attestation for a day (JSON + HTML), signed off with its SHA-256."

    def add_arguments(self, parser):
        parser.add_argument("--date", dest="on", help="YYYY-MM-DD (Hong Kong); default today")
        parser.add_argument("--output-dir", default=None)
        parser.add_argument("--signed-off-by", default="Harbourline reserve controller")

    def handle(self, *args, on=None, output_dir=None, signed_off_by="", **options):
        try:
            day = date.fromisoformat(on) if on else timezone.localdate()
        except ValueError:
            raise CommandError(f"--date must be YYYY-MM-DD, not {on!r}")
        if day > timezone.localdate():
            raise CommandError("An attestation covers a day that has begun, not a future one.")
        attestation = reserves_attestation_build(on=day, signed_off_by=signed_off_by)
        document = attestation.to_json()
        directory = Path(output_dir or settings.RESERVES_ATTESTATION_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / f"reserves-attestation-{day.isoformat()}"
        json_path, html_path = stem.with_suffix(".json"), stem.with_suffix(".html")
        json_path.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        html_path.write_text(render_to_string("settlement/attestation.html", {"a": document}))
        self.stdout.write(f"wrote {json_path}")
        self.stdout.write(f"wrote {html_path}")
        self.stdout.write(f"sha256 {attestation.sha256}")
        failures = list(document["ledger_verification"]["breaches"])
        if document["custodian"].get("live") and not document["custodian"].get("reconciled"):
            failures.append(f"the custodian does not reconcile: {document['custodian'].get('error') or 'difference'}")
        if failures:
            raise CommandError("attestation shows exceptions: " + "; ".join(failures))
        self.stdout.write(self.style.SUCCESS(f"reserves attested for {day.isoformat()}: fully backed"))

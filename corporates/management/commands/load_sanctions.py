"""Load a sanctions list (CSV, see corporates/data/README.md) and re-screen every party."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from corporates.sanctions import SanctionsListInvalid, sanctions_list_load


class Command(BaseCommand):
    help = "Replace the sanctions list with a CSV file (name,aliases,country,list_source) and re-screen everyone."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", nargs="?", help="CSV file (default: settings.SANCTIONS_LIST_PATH)")

    def handle(self, *args, **options) -> None:
        path = options["path"] or settings.SANCTIONS_LIST_PATH
        try:
            result = sanctions_list_load(path=path)
        except SanctionsListInvalid as exc:
            raise CommandError(exc.message)
        self.stdout.write(
            f"Loaded {result.load.entry_count} entries from {result.load.source}; "
            f"{len(result.alerts)} new alert(s) for review."
        )

"""python manage.py demo_totp — the current two-factor code of the demo logins (seed_demo's fixed key).

Only the demo key: real members' keys never leave their authenticator apps.
"""

import base64

from django.core.management.base import BaseCommand
from django_otp.oath import TOTP

from settlement.management.commands.seed_demo import DEMO_TOTP_SECRET


class Command(BaseCommand):
    help = "Print the current TOTP code for the demo logins."

    def handle(self, *args, **options):
        totp = TOTP(base64.b32decode(DEMO_TOTP_SECRET))
        remaining = totp.step - int(totp.time - totp.t0) % totp.step
        self.stdout.write(f"{totp.token():06d}  (valid for {remaining} more seconds)")

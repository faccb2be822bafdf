"""The WSGI entry point: API requests get the API's own middleware, everything else the full stack.

An ERP call to ``/api/`` authenticates with a Bearer API key (DRF's
``ApiKeyAuthentication``), never with a session: sessions, CSRF, the auth
middleware's lazy user, django-otp, axes and messages do nothing for it but
cost CPU on every request (docs/benchmarks.md, FX). So ``/api/`` paths go to a
handler built with ``settings.API_MIDDLEWARE`` — the security headers
(SecurityMiddleware, X-Frame-Options) and CommonMiddleware stay. So does
``/webhooks/``: the bank's signed events are machine calls authenticated by
their signature, and each one holds the shared in-transit account's lock
while it is served. Every other path (portal, admin, static files) goes to
Django's handler with the full ``MIDDLEWARE``. Errors under /api/ are problem details either way:
DRF's exception handler and the URLconf's handler404/500 produce them, not
middleware. The test client always builds the full stack; tests/api/test_wsgi_entry.py
drives this entry point itself.
"""

import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

API_PREFIX = "/api/"
# Paths served with the lean middleware: the ERP API and the bank's webhooks.
MACHINE_PREFIXES = (API_PREFIX, "/webhooks/")


class ApiWSGIHandler(WSGIHandler):
    """Django's WSGI handler with ``settings.API_MIDDLEWARE`` in place of ``settings.MIDDLEWARE``."""

    def load_middleware(self, is_async: bool = False) -> None:
        from django.conf import settings

        # BaseHandler.load_middleware reads settings.MIDDLEWARE; this runs
        # once, at import, before any request is served.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


site_application = get_wsgi_application()
api_application = ApiWSGIHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(MACHINE_PREFIXES):
        return api_application(environ, start_response)
    return site_application(environ, start_response)

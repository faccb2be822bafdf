"""config/wsgi.py: /api/ requests run through the API's own middleware, the rest through the full stack.

The test client always builds the full MIDDLEWARE, so these tests call the
WSGI entry point gunicorn serves, as gunicorn would.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from config import wsgi

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}


@pytest.fixture(autouse=True)
def _keep_the_test_connection(db):
    # The WSGI handler closes the database connection after each request;
    # inside the test's transaction it must not (the test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def call(method: str, path: str, *, body: bytes = b"", **headers: str) -> tuple[int, dict[str, str], bytes]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
    answer: dict = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    content = b"".join(wsgi.application(environ, start_response))
    return answer["status"], answer["headers"], content


def test_api_requests_get_the_lean_handler_and_the_rest_the_full_one(settings):
    assert [type(m).__module__ for m in _chain(wsgi.api_application)] == [
        path.rsplit(".", 1)[0] for path in settings.API_MIDDLEWARE
    ]
    full = {type(m).__module__ for m in _chain(wsgi.site_application)}
    assert {"django.contrib.sessions.middleware", "django.middleware.csrf", "axes.middleware"} <= full


def _chain(handler) -> list:
    """The middleware instances of a handler, outermost first."""
    found, current = [], handler._middleware_chain
    # Each middleware is wrapped by convert_exception_to_response (functools.wraps).
    while hasattr(getattr(current, "__wrapped__", None), "get_response"):
        found.append(current.__wrapped__)
        current = current.__wrapped__.get_response
    return found


def test_an_api_answer_keeps_its_security_headers_and_sets_no_cookie(enterprise, make_key):
    status, headers, body = call("GET", "/api/v1/fx/rates", authorization=f"Bearer {make_key(enterprise)}")
    assert status == 200 and "legs" in json.loads(body)
    assert SECURITY_HEADERS.items() <= headers.items()
    assert "Set-Cookie" not in headers


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("/api/v1/fx/rates", {}, 401, "not_authenticated"),
        ("/api/v1/fx/rates", {"authorization": "Bearer hlk_nope_nope"}, 401, "api_key_invalid"),
        ("/api/v1/no-such-thing", {}, 404, "not_found"),
    ],
)
def test_api_errors_are_problem_details_with_security_headers(path, headers, status, code):
    got, response_headers, body = call("GET", path, **headers)
    assert got == status
    assert response_headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["code"] == code
    assert SECURITY_HEADERS.items() <= response_headers.items()


def test_an_api_post_runs_its_idempotency_and_scopes_through_the_lean_handler(enterprise, make_key):
    key = make_key(enterprise, scopes=["read"])
    body = json.dumps(
        {"sell_currency": "USD", "buy_currency": "HKD", "sell_amount": {"amount": "1.00", "currency": "USD"}}
    ).encode()
    status, _, content = call(
        "POST", "/api/v1/fx/quotes", body=body, authorization=f"Bearer {key}", idempotency_key="k-1"
    )
    assert status == 403 and json.loads(content)["code"] == "insufficient_scope"


def test_the_portal_keeps_sessions_and_csrf():
    status, headers, _ = call("GET", "/login/")
    assert status == 200
    assert "csrftoken=" in headers.get("Set-Cookie", "")
    assert SECURITY_HEADERS.items() <= headers.items()


def test_the_admin_keeps_its_full_stack():
    status, headers, _ = call("GET", "/admin/")
    assert status == 302 and "/login/" in headers["Location"]


def test_the_banks_signed_events_are_served_by_the_lean_handler(settings):
    """/webhooks/ is a machine path (signature-authenticated): lean stack, and the view needs nothing more."""
    from settlement.webhooks_in import signature_header_compute

    assert "/webhooks/bank/".startswith(wsgi.MACHINE_PREFIXES)
    settings.BANK_RAILS_WEBHOOK_SECRET = "whsec_wsgi_entry"
    event = {
        "id": "evt_wsgi_entry",
        "type": "payout.created",  # acknowledged and ignored: only the terminal events are acted on
        "created": 1_700_000_000,
        "data": {"object": {"id": "po_wsgi_entry", "object": "payout", "amount": 100, "currency": "hkd"}},
    }
    body = json.dumps(event).encode()

    refused = call("POST", "/webhooks/bank/", body=body, stripe_signature="t=1,v1=00")
    status, headers, content = call(
        "POST",
        "/webhooks/bank/",
        body=body,
        stripe_signature=signature_header_compute(payload=body, secret="whsec_wsgi_entry"),
    )

    assert refused[0] == 400 and "Set-Cookie" not in refused[1]
    assert status == 200 and json.loads(content) == {"id": "evt_wsgi_entry", "outcome": "ignored"}
    assert SECURITY_HEADERS.items() <= headers.items() and "Set-Cookie" not in headers

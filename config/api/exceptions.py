"""One exception handler: every API failure becomes RFC 9457 problem details.

Whatever goes wrong under /api/ — a business rule (``DomainError``), money that
does not parse (``MoneyParseError``), a DRF validation, authentication,
permission or throttling error, a 404, or a bug — the client receives
``application/problem+json`` with a stable ``code`` it can act on, and for
validation failures ``errors`` listing each invalid field. Never an HTML page,
never a stack trace: unexpected exceptions are logged here and answered with
a generic ``internal_error``.

``handler404`` / ``handler500`` (wired in config/urls.py) do the same for
failures Django handles outside DRF, on /api/ paths only; the portal keeps
Django's pages.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import set_rollback

from config.errors import DomainError
from config.money import MoneyParseError

logger = logging.getLogger("harbourline.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
API_PATH_PREFIX = "/api/"

# DRF's default codes, renamed where the API promises a clearer one.
_DRF_CODES = {
    "invalid": "validation_error",
    "parse_error": "malformed_request",
    "not_authenticated": "not_authenticated",
    "authentication_failed": "authentication_failed",
    "permission_denied": "permission_denied",
    "not_found": "not_found",
    "method_not_allowed": "method_not_allowed",
    "not_acceptable": "not_acceptable",
    "unsupported_media_type": "unsupported_media_type",
    "throttled": "rate_limited",
}


def problem_type(code: str) -> str:
    """The problem's ``type`` URI: a stable URN per code (docs/api.md lists them)."""
    return f"urn:harbourline:problem:{code}"


def problem(
    *,
    status_code: int,
    code: str,
    title: str,
    detail: str | None = None,
    instance: str | None = None,
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": problem_type(code), "title": title, "status": status_code, "code": code}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    return body


class ProblemResponse(Response):
    """A DRF response always rendered as JSON with the problem media type.

    DRF picks the renderer from the request's Accept header; an error must stay
    problem+json even when the client asked for CSV, so this response ignores
    the negotiated renderer.
    """

    def __init__(self, data: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(data=data, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)

    @property
    def rendered_content(self):
        self.accepted_renderer = JSONRenderer()
        self.accepted_media_type = PROBLEM_CONTENT_TYPE
        self.renderer_context = getattr(self, "renderer_context", None) or {}
        return super().rendered_content


def validation_errors(detail: Any, prefix: str = "") -> Iterator[dict[str, str]]:
    """Flatten DRF's nested error detail into ``[{"field", "code", "detail"}]`` with dotted paths."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            yield from validation_errors(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    elif isinstance(detail, list):
        nested = any(isinstance(item, (dict, list)) for item in detail)
        for index, item in enumerate(detail):
            # A list of error strings belongs to the field itself; a list of
            # dicts (many=True) is indexed.
            yield from validation_errors(item, f"{prefix}.{index}" if nested and prefix else prefix)
    else:
        code = getattr(detail, "code", None) or "invalid"
        yield {"field": prefix, "code": str(code), "detail": str(detail)}


def _first_code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    while isinstance(codes, (list, dict)):
        if not codes:
            return exc.default_code
        codes = next(iter(codes.values())) if isinstance(codes, dict) else codes[0]
    return _DRF_CODES.get(str(codes), str(codes))


def problem_for_exception(exc: BaseException, *, instance: str | None = None) -> tuple[dict[str, Any], int, dict]:
    """(problem body, HTTP status, extra headers) for any exception."""
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        # A service that knows which input it refused says so (field=…).
        field = exc.context.get("field")
        errors = [{"field": str(field), "code": exc.code, "detail": exc.message}] if field else None
        body = problem(
            status_code=exc.http_status, code=exc.code, title=exc.title, detail=exc.message, instance=instance,
            errors=errors,
        )  # fmt: skip
        # An error class that knows when to come back says so (retry_after = seconds).
        if getattr(exc, "retry_after", None):
            headers["Retry-After"] = str(exc.retry_after)
        return body, exc.http_status, headers
    if isinstance(exc, MoneyParseError):
        errors = [{"field": exc.field, "code": exc.code, "detail": exc.message}]
        body = problem(
            status_code=400, code=exc.code, title="The money in the request is invalid.", detail=exc.message,
            instance=instance, errors=errors,
        )  # fmt: skip
        return body, 400, headers
    if isinstance(exc, RequestDataTooBig):
        body = problem(status_code=413, code="request_too_large", title="The request body is too large.",
                       instance=instance)  # fmt: skip
        return body, 413, headers
    if isinstance(exc, SuspiciousOperation):
        body = problem(status_code=400, code="bad_request", title="The request is malformed.", instance=instance)
        return body, 400, headers
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        errors = list(validation_errors(exc.detail))
        # One invalid field with its own code (e.g. idempotency_key_required)
        # gives the problem that code; several give the generic one.
        codes = {error["code"] for error in errors}
        code = codes.pop() if len(codes) == 1 and not codes & {"invalid", "required"} else "validation_error"
        body = problem(
            status_code=400, code=code, title="The request is invalid.",
            detail="See errors for the invalid fields.", instance=instance, errors=errors,
        )  # fmt: skip
        return body, 400, headers
    if isinstance(exc, exceptions.APIException):
        code = _first_code(exc)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
        title = str(exc.default_detail)
        detail = exc.detail if isinstance(exc.detail, str) else None
        return (
            problem(status_code=exc.status_code, code=code, title=title, detail=detail, instance=instance),
            exc.status_code,
            headers,
        )
    body = problem(
        status_code=500, code="internal_error", title="Something went wrong on our side.",
        detail="The failure has been logged. Retrying with the same Idempotency-Key is safe.", instance=instance,
    )  # fmt: skip
    return body, 500, headers


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception raised in an API view, as problem details."""
    request = context.get("request")
    instance = request.path if request is not None else None
    body, status_code, headers = problem_for_exception(exc, instance=instance)
    if isinstance(exc, DomainError) and status_code >= 500:
        # A deliberate "unavailable" (e.g. rates_stale): worth a line, not a traceback.
        logger.warning("API request refused as unavailable: %s %s", instance, exc.code)
    elif status_code >= 500:
        logger.exception("API request failed: %s", instance, exc_info=exc)
    # A failed request writes nothing: roll back whatever transaction the
    # request opened (DRF does the same in its own handler).
    set_rollback()
    return ProblemResponse(body, status=status_code, headers=headers)


def _problem_json(request: HttpRequest, status_code: int, code: str, title: str) -> JsonResponse:
    return JsonResponse(
        problem(status_code=status_code, code=code, title=title, instance=request.path),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(API_PATH_PREFIX):
        return _problem_json(request, status.HTTP_404_NOT_FOUND, "not_found", "Not found.")
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(API_PATH_PREFIX):
        return _problem_json(
            request, status.HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "Something went wrong on our side."
        )
    return defaults.server_error(request)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(API_PATH_PREFIX):
        return _problem_json(request, status.HTTP_400_BAD_REQUEST, "bad_request", "The request is malformed.")
    return defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(API_PATH_PREFIX):
        return _problem_json(request, status.HTTP_403_FORBIDDEN, "permission_denied", "Permission denied.")
    return defaults.permission_denied(request, exception)

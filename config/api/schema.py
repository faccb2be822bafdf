"""OpenAPI post-processing: problem details, Idempotency-Key and Retry-After on every operation.

drf-spectacular describes each view's success responses; the failures every
endpoint shares are added here in one place, so the schema cannot forget one
and later capabilities get them for free.
"""

from __future__ import annotations

from typing import Any

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_CONTENT = {"application/problem+json": {"schema": PROBLEM_REF}}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details. `code` is stable; docs/api.md lists every code.",
    "properties": {
        "type": {"type": "string", "description": "urn:harbourline:problem:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "Stable, machine-readable."},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Validation failures, one per invalid field.",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string", "description": "Dotted path of the field; empty for the whole body."},
                    "code": {"type": "string"},
                    "detail": {"type": "string"},
                },
                "required": ["field", "code", "detail"],
            },
        },
    },
    "required": ["type", "title", "status", "code"],
}

IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": True,
    "description": "Unique per logical request, 1–255 printable ASCII characters. A repeat with the same key and "
    "body replays the first response (header Idempotent-Replayed: true); another body is refused "
    "(idempotency_key_reused).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}

# Status -> description, for every operation.
_COMMON_FAILURES = {
    "400": "Invalid request (problem details; `errors` lists the invalid fields).",
    "401": "Missing, unknown or revoked API key.",
    "403": "The API key lacks the scope this operation needs.",
    "404": "No such object for the caller's enterprise.",
    "406": "The Accept header asks for a representation this operation does not offer.",
    "429": "Rate limit exceeded; retry after Retry-After seconds.",
    "500": "Unexpected failure; logged on our side.",
    "503": "Temporarily unavailable (e.g. rates_stale); retry later.",
}
_POST_FAILURES = {
    "409": "A conflict: the state does not allow it, or a request with this Idempotency-Key is still running.",
    "415": "The body is not application/json.",
    "422": "The Idempotency-Key was used with a different request, or a business rule refused it.",
}


def problem_details_hook(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/") or path.startswith(("/api/v1/schema", "/api/v1/docs", "/api/v1/redoc")):
            continue
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for response in responses.values():
                # CSV bodies are text, whatever serializer describes the JSON form.
                if "text/csv" in response.get("content", {}):
                    response["content"]["text/csv"] = {"schema": {"type": "string"}}
            failures = dict(_COMMON_FAILURES)
            if method != "get":
                failures.update(_POST_FAILURES)
            for code, description in failures.items():
                response = responses.setdefault(code, {"description": description})
                response["content"] = PROBLEM_CONTENT
                if code == "429":
                    response["headers"] = {
                        "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
                    }
            if method == "post":
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                    parameters.append(IDEMPOTENCY_KEY_PARAMETER)
    return result

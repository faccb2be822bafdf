"""The base of every business error.

Each service defines its own subclasses beside itself, with a stable ``code``
that API clients can act on; one exception handler turns them into RFC 9457
problem details, and portal views turn them into form errors.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code: str = "domain_error"
    title: str = "The request could not be carried out."
    http_status: int = 409

    def __init__(self, message: str | None = None, **context: Any) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title
        self.context = context

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

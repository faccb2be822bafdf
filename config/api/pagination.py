"""Cursor pagination for every API list.

Cursors, not page numbers: a client walking a statement while new postings
arrive sees each row once, and deep pages cost the same as the first. The
cursor is opaque (``next`` / ``previous`` are full URLs); ``limit`` picks the
page size up to ``max_page_size``.
"""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "limit"
    cursor_query_param = "cursor"
    # Views order by a column that only grows (the primary key or a creation
    # time), so a cursor stays valid while rows are added.
    ordering = "-created_at"

    def get_paginated_response_schema(self, schema):
        described = super().get_paginated_response_schema(schema)
        described["required"] = ["next", "previous", "results"]
        return described

"""Renderers beyond JSON: CSV for statements (``Accept: text/csv``)."""

from __future__ import annotations

from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    """Lets content negotiation accept ``text/csv``; the view streams the rows itself.

    Views that list this renderer check ``request.accepted_renderer.format ==
    "csv"`` and return a ``StreamingHttpResponse``; anything that still reaches
    this renderer (it should not) is rendered as plain text.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return b"" if data is None else str(data).encode(self.charset)

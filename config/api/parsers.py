"""The API's JSON parser: JSON that PostgreSQL and Decimal can take, or a 400.

``json.loads`` accepts what no column can store and no amount should be:
``NaN`` and ``Infinity``, the NUL character (PostgreSQL text refuses it) and
lone UTF-16 surrogates (not encodable as UTF-8). Each would otherwise reach a
serializer or the database and end as a 500. Refusing them here, for every
endpoint at once, turns them into ``malformed_request``.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ParseError("Strings may not contain the NUL character.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError("Strings may not contain unpaired surrogates.") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key)
            _check(item)
    elif isinstance(value, list):
        for item in value:
            _check(item)


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            data = json.loads(text, parse_constant=_refuse_constant)
            _check(data)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise ParseError("JSON nested too deeply.") from None
        return data

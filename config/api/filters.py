"""django-filter filters that are safe with any input a client can send."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC while the form cleans it.

    Python accepts UTC offsets up to ±23:59; PostgreSQL refuses anything past
    ±15:59 with a DataError (a 500). Converting to UTC first keeps every valid
    instant and sends PostgreSQL only offsets it accepts; an instant that UTC
    cannot hold (year 1 with a positive offset) is a validation error.
    """

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("The date-time is out of range.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField

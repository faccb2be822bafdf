"""Response bodies from a serializer bound once per process, not one built per response.

``SomeSerializer(instance).data`` deep-copies every declared field and binds
the copies on each call: for the quote, the swap and the rates that was most
of the response's shaping, and the shaping a tenth of an FX request's CPU
(docs/benchmarks.md, FX). ``represent`` keeps one unbound-instance serializer
per class and calls its ``to_representation``, which reads its fields and
never changes them, so the body is the serializer's own, byte for byte, and
the serializer stays the one description of the shape (and of the OpenAPI
schema). For output only, without context: serializers that validate input,
or that need the request, are built per request as usual.
"""

from __future__ import annotations

import functools
from typing import Any

from rest_framework import serializers


@functools.cache
def _bound(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    serializer = serializer_class()
    serializer.fields  # noqa: B018 - bind the fields now, once
    return serializer


def represent(serializer_class: type[serializers.Serializer], instance: Any) -> dict:
    """What ``serializer_class(instance).data`` is, from the class's one bound serializer."""
    return _bound(serializer_class).to_representation(instance)

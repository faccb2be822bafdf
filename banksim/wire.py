"""Stripe's wire format: form-encoded bodies, error objects, list objects, ids.

Requests arrive as ``application/x-www-form-urlencoded`` with Stripe's nesting
(``metadata[order]=42``, ``external_account[currency]=hkd``, ``expand[]=x``);
responses are JSON objects with an ``object`` field; errors are
``{"error": {"type", "message", "code", "param"}}`` with Stripe's HTTP status.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

_ALPHABET = string.ascii_letters + string.digits
_NESTED = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])+)$")


def new_id(prefix: str) -> str:
    """Stripe-looking ids: a prefix, an underscore and 24 random letters and digits (po_…, ba_…, evt_…)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def now() -> int:
    return int(time.time())


class StripeError(Exception):
    """An error answered in Stripe's shape. ``status`` is the HTTP status Stripe uses for it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.should_retry = should_retry

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


def resource_missing(kind: str, object_id: str, *, param: str | None = None) -> StripeError:
    # A missing object named in the path is a 404; one named by a parameter is a 400.
    return StripeError(
        400 if param else 404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param or "id"
    )


def form_decode(body: str) -> dict[str, Any]:
    """``a=1&metadata[k]=v&expand[]=x`` -> {"a": "1", "metadata": {"k": "v"}, "expand": ["x"]}."""
    params: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True, strict_parsing=False):
        match = _NESTED.match(key)
        if not match:
            params[key] = value
            continue
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: Any = params
        for index, part in enumerate(path):
            last = index == len(path) - 1
            following = None if last else path[index + 1]
            container_is_list = following == "" or (following is not None and following.isdigit())
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                node.append([] if container_is_list else {})
                node = node[-1]
                continue
            if last:
                node[part] = value
            else:
                if part not in node or not isinstance(node[part], (dict, list)):
                    node[part] = [] if container_is_list else {}
                node = node[part]
    return params


def list_object(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


# --- parameter validation, with Stripe's codes and messages -----------------------------------


def params_allow(params: dict[str, Any], allowed: Iterable[str]) -> None:
    allowed = set(allowed) | {"expand"}  # expand is accepted everywhere and ignored here
    for name in params:
        if name not in allowed:
            raise StripeError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def param_required(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise StripeError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)
    return value


def param_positive_int(params: dict[str, Any], name: str) -> int:
    raw = param_required(params, name)
    if not isinstance(raw, str) or not re.fullmatch(r"\d{1,18}", raw):
        raise StripeError(400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name)
    value = int(raw)
    if value <= 0:
        raise StripeError(400, "This value must be greater than or equal to 1.", code="amount_too_small", param=name)
    return value


def param_string(params: dict[str, Any], name: str, *, max_length: int, required: bool = False) -> str | None:
    value = param_required(params, name) if required else params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise StripeError(400, f"Invalid string: {value!r}", code="parameter_invalid_string_blank", param=name)
    if len(value) > max_length:
        raise StripeError(
            400,
            f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
            code="parameter_invalid_string_blank",
            param=name,
        )
    return value


def param_currency(params: dict[str, Any], supported: Iterable[str], name: str = "currency") -> str:
    raw = param_required(params, name)
    currency = raw.lower() if isinstance(raw, str) else ""
    supported = tuple(supported)
    if currency not in supported:
        raise StripeError(
            400,
            f"Invalid currency: {raw}. This bank supports these currencies: {', '.join(supported)}",
            code="parameter_invalid_string",
            param=name,
        )
    return currency


def param_metadata(params: dict[str, Any]) -> dict[str, str]:
    """Stripe's limits: 50 keys, keys up to 40 characters, values up to 500; an empty value unsets."""
    raw = params.get("metadata")
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, dict):
        raise StripeError(400, "Invalid object", code="parameter_invalid_empty", param="metadata")
    if len(raw) > 50:
        raise StripeError(400, "Metadata can have at most 50 keys.", code="parameter_invalid_empty", param="metadata")
    metadata: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            raise StripeError(400, "Invalid metadata value", param=f"metadata[{key}]")
        if len(key) > 40:
            raise StripeError(400, "Metadata keys can be at most 40 characters.", param=f"metadata[{key}]")
        if len(value) > 500:
            raise StripeError(400, "Metadata values can be at most 500 characters.", param=f"metadata[{key}]")
        if value != "":
            metadata[key] = value
    return metadata


def param_limit(params: dict[str, Any]) -> int:
    raw = params.get("limit", "10")
    if not isinstance(raw, str) or not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise StripeError(
            400, "Invalid integer: limit must be between 1 and 100", code="parameter_invalid_integer", param="limit"
        )
    return int(raw)


def param_choice(params: dict[str, Any], name: str, choices: Iterable[str]) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    choices = tuple(choices)
    if value not in choices:
        raise StripeError(
            400, f"Invalid {name}: must be one of {', '.join(choices)}", code="parameter_invalid_string", param=name
        )
    return value


Handler = Callable[..., tuple[int, dict[str, Any]]]

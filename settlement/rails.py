"""The platform's client for the bank rails: banksim, or any server that speaks Stripe's API.

Only this module talks to the bank, only over HTTP (httpx), and only with what
Stripe's API reference defines for each endpoint: form-encoded parameters,
``Authorization: Bearer sk_…``, an ``Idempotency-Key`` on every POST. Our own
fields (redemption ids, enterprise ids) travel in ``metadata[...]``. Responses
are read leniently: unknown fields are ignored (kept in ``raw``), so that a
newer or richer Stripe-compatible server does not break us.

Money crosses the boundary as integer minor units; currencies are the
platform's upper-case codes here (``HKD``) and Stripe's lower-case on the wire
(``hkd``).

Retries: a request that may safely be repeated (every GET, and every POST
since each carries an Idempotency-Key) is retried on connection errors,
timeouts, 409 (key in use), 429 and 5xx, with exponential backoff and the
same key, so that a payout is never made twice. After the last attempt the
error is raised; ``error.retryable`` tells the caller (a Celery task) whether
trying again later, with the same key, is sensible.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import httpx
from django.conf import settings

from config.errors import DomainError
from settlement.webhooks_in import BankEvent

# --- errors: one class per kind of Stripe error; ``stripe_code`` carries Stripe's code ----------


class RailsError(DomainError):
    code = "rails_error"
    title = "The bank rails refused or failed the request."
    http_status = 502  # what our own API answers when this surfaces there
    retryable = False

    def __init__(
        self,
        message: str | None = None,
        *,
        bank_status: int | None = None,
        stripe_type: str | None = None,
        stripe_code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.bank_status = bank_status
        self.stripe_type = stripe_type
        self.stripe_code = stripe_code
        self.param = param
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        detail = f" [{self.stripe_code}]" if self.stripe_code else ""
        return f"{self.code}{detail}: {self.message}"


class RailsInvalidRequest(RailsError):
    code = "rails_invalid_request"
    title = "The bank refused the request's parameters."


class RailsNotFound(RailsInvalidRequest):
    code = "rails_not_found"
    title = "The bank has no such object."


class RailsIdempotencyError(RailsError):
    code = "rails_idempotency_conflict"
    title = "The idempotency key was used before with other parameters."


class RailsAuthenticationError(RailsError):
    code = "rails_authentication_failed"
    title = "The bank refused our API key."


class RailsPermissionError(RailsError):
    code = "rails_permission_denied"
    title = "Our API key may not do this at the bank."


class RailsRateLimited(RailsError):
    code = "rails_rate_limited"
    title = "The bank is limiting our request rate."
    retryable = True


class RailsApiError(RailsError):
    code = "rails_api_error"
    title = "The bank failed to process the request."
    retryable = True


class RailsUnavailable(RailsError):
    code = "rails_unavailable"
    title = "The bank could not be reached or did not answer in time."
    retryable = True


class RailsResponseInvalid(RailsError):
    code = "rails_response_invalid"
    title = "The bank's answer could not be read."


_ERRORS_BY_TYPE: dict[str, type[RailsError]] = {
    "invalid_request_error": RailsInvalidRequest,
    "idempotency_error": RailsIdempotencyError,
    "api_error": RailsApiError,
    "rate_limit_error": RailsRateLimited,
}


def _error_from_response(response: httpx.Response) -> RailsError:
    status = response.status_code
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
    except ValueError:
        body, error = response.text, None
    if not isinstance(error, dict):
        error = {}
    stripe_type = error.get("type")
    stripe_code = error.get("code")
    if status == 401:
        cls: type[RailsError] = RailsAuthenticationError
    elif status == 403:
        cls = RailsPermissionError
    elif status == 429:
        cls = RailsRateLimited
    elif status >= 500:
        cls = RailsApiError
    elif stripe_code == "resource_missing" or status == 404:
        cls = RailsNotFound
    elif status == 409:
        cls = RailsApiError  # a concurrent request with the same key is still running: retry
    else:
        cls = _ERRORS_BY_TYPE.get(stripe_type or "", RailsInvalidRequest)
    return cls(
        error.get("message") or f"HTTP {status} from the bank",
        bank_status=status,
        stripe_type=stripe_type,
        stripe_code=stripe_code,
        param=error.get("param"),
        request_id=response.headers.get("Request-Id"),
        body=body,
    )


# --- what the bank returns, read leniently ----------------------------------------------------


def _currency_in(value: Any) -> str:
    return str(value or "").upper()


def _metadata_in(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _required(data: Mapping[str, Any], name: str) -> Any:
    if name not in data or data[name] is None:
        raise RailsResponseInvalid(f"The bank's {data.get('object', 'object')} has no {name}.", body=dict(data))
    return data[name]


@dataclass(frozen=True)
class Payout:
    id: str
    status: str  # pending, in_transit, paid, failed, canceled
    amount_minor: int
    currency: str
    destination: str | None
    created: int
    arrival_date: int | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    balance_transaction: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> Payout:
        destination = data.get("destination")
        if isinstance(destination, Mapping):  # expanded
            destination = destination.get("id")
        return cls(
            id=_required(data, "id"),
            status=_required(data, "status"),
            amount_minor=int(_required(data, "amount")),
            currency=_currency_in(_required(data, "currency")),
            destination=destination,
            created=int(data.get("created") or 0),
            arrival_date=data.get("arrival_date"),
            failure_code=data.get("failure_code"),
            failure_message=data.get("failure_message"),
            balance_transaction=data.get("balance_transaction")
            if isinstance(data.get("balance_transaction"), str)
            else None,
            metadata=_metadata_in(data.get("metadata")),
            raw=data,
        )


@dataclass(frozen=True)
class Balance:
    """The custodian's balance: per currency (HKD…), integer minor units."""

    available: dict[str, int]
    pending: dict[str, int]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> Balance:
        def amounts(items: Any) -> dict[str, int]:
            totals: dict[str, int] = {}
            for item in items or []:
                currency = _currency_in(item.get("currency"))
                totals[currency] = totals.get(currency, 0) + int(item.get("amount") or 0)
            return totals

        return cls(available=amounts(data.get("available")), pending=amounts(data.get("pending")), raw=data)


@dataclass(frozen=True)
class BankAccount:
    id: str
    currency: str
    last4: str | None
    account_holder_name: str | None
    status: str | None
    fingerprint: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> BankAccount:
        return cls(
            id=_required(data, "id"),
            currency=_currency_in(_required(data, "currency")),
            last4=data.get("last4"),
            account_holder_name=data.get("account_holder_name"),
            status=data.get("status"),
            fingerprint=data.get("fingerprint"),
            metadata=_metadata_in(data.get("metadata")),
            raw=data,
        )


@dataclass(frozen=True)
class InboundWire:
    id: str
    amount_minor: int
    currency: str
    reference: str | None
    status: str | None
    created: int
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> InboundWire:
        return cls(
            id=_required(data, "id"),
            amount_minor=int(_required(data, "amount")),
            currency=_currency_in(_required(data, "currency")),
            reference=data.get("reference"),
            status=data.get("status"),
            created=int(data.get("created") or 0),
            raw=data,
        )


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    data: list[T]
    has_more: bool

    @property
    def last_id(self) -> str | None:
        return getattr(self.data[-1], "id", None) if self.data else None


# --- the wire format ----------------------------------------------------------------------------


def form_encode(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: nested mappings as ``key[sub]``, lists as ``key[0]``; None is left out."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs.extend(form_encode(value, name))
        elif isinstance(value, (list, tuple)):
            pairs.extend(form_encode({str(i): item for i, item in enumerate(value)}, name))
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        else:
            pairs.append((name, str(value)))
    return pairs


def _amount_check(amount_minor: int) -> int:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValueError(f"amount_minor must be a positive integer of minor units, not {amount_minor!r}")
    return amount_minor


def _metadata_out(metadata: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not metadata:
        return None
    return {str(key): str(value) for key, value in metadata.items()}


class RailsClient:
    """One client per unit of work (``with rails_client() as rails: …``); it is thread-safe."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        secret_key: str | None = None,
        account_id: str | None = None,
        timeout_s: float | None = None,
        connect_timeout_s: float | None = None,
        max_retries: int | None = None,
        retry_backoff_s: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or settings.BANK_RAILS_BASE_URL).rstrip("/")
        self.account_id = account_id or settings.BANK_RAILS_ACCOUNT_ID
        self.max_retries = settings.BANK_RAILS_MAX_RETRIES if max_retries is None else max_retries
        self.retry_backoff_s = settings.BANK_RAILS_RETRY_BACKOFF_S if retry_backoff_s is None else retry_backoff_s
        timeout = settings.BANK_RAILS_TIMEOUT_S if timeout_s is None else timeout_s
        connect = settings.BANK_RAILS_CONNECT_TIMEOUT_S if connect_timeout_s is None else connect_timeout_s
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {secret_key or settings.BANK_RAILS_SECRET_KEY}",
                "User-Agent": "Harbourline-rails/1.0 httpx",
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout, connect=connect),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RailsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        if method == "POST" and not idempotency_key:
            # Without a key a retried POST could pay twice; every write names its key.
            raise ValueError("every POST to the bank carries an Idempotency-Key")
        pairs = form_encode(params or {})
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        last_error: RailsError | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._backoff(attempt)
            try:
                if method == "POST":
                    headers["Content-Type"] = "application/x-www-form-urlencoded"
                    response = self._http.post(path, content=urlencode(pairs), headers=headers)
                else:
                    response = self._http.request(method, path, params=pairs, headers=headers)
            except httpx.TimeoutException as exc:
                last_error = RailsUnavailable(f"The bank did not answer in time ({type(exc).__name__}).")
                continue
            except httpx.TransportError as exc:
                last_error = RailsUnavailable(f"The bank could not be reached ({type(exc).__name__}: {exc}).")
                continue
            if 200 <= response.status_code < 300:
                try:
                    data = response.json()
                except ValueError:
                    raise RailsResponseInvalid("The bank answered with something that is not JSON.")
                if not isinstance(data, dict):
                    raise RailsResponseInvalid("The bank answered with JSON that is not an object.")
                return data
            error = _error_from_response(response)
            should_retry = response.headers.get("Stripe-Should-Retry")
            if should_retry == "false" or (should_retry != "true" and not error.retryable):
                raise error
            last_error = error
        assert last_error is not None
        raise last_error

    def _backoff(self, attempt: int) -> None:
        delay = min(self.retry_backoff_s * 2 ** (attempt - 1), 2.0)
        time.sleep(delay * random.uniform(0.5, 1.0))  # jitter: concurrent retriers spread out

    # --- payouts -------------------------------------------------------------------------------

    def payout_create(
        self,
        *,
        amount_minor: int,
        currency: str,
        destination: str,
        idempotency_key: str,
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
        statement_descriptor: str | None = None,
    ) -> Payout:
        data = self._request(
            "POST",
            "/v1/payouts",
            params={
                "amount": _amount_check(amount_minor),
                "currency": currency.lower(),
                "destination": destination,
                "description": description,
                "statement_descriptor": statement_descriptor,
                "metadata": _metadata_out(metadata),
            },
            idempotency_key=idempotency_key,
        )
        return Payout.from_stripe(data)

    def payout_retrieve(self, *, payout_id: str) -> Payout:
        return Payout.from_stripe(self._request("GET", f"/v1/payouts/{payout_id}"))

    def payout_cancel(self, *, payout_id: str, idempotency_key: str) -> Payout:
        return Payout.from_stripe(
            self._request("POST", f"/v1/payouts/{payout_id}/cancel", idempotency_key=idempotency_key)
        )

    def payouts_list(
        self, *, limit: int = 10, starting_after: str | None = None, status: str | None = None
    ) -> Page[Payout]:
        data = self._request(
            "GET", "/v1/payouts", params={"limit": limit, "starting_after": starting_after, "status": status}
        )
        return Page([Payout.from_stripe(item) for item in data.get("data") or []], bool(data.get("has_more")))

    def payouts_iter(self, *, status: str | None = None, page_size: int = 100) -> Iterator[Payout]:
        """Every payout, newest first, page by page."""
        cursor: str | None = None
        while True:
            page = self.payouts_list(limit=page_size, starting_after=cursor, status=status)
            yield from page.data
            if not page.has_more or not page.data:
                return
            cursor = page.last_id

    # --- balance ---------------------------------------------------------------------------------

    def balance_retrieve(self) -> Balance:
        return Balance.from_stripe(self._request("GET", "/v1/balance"))

    # --- external accounts (an enterprise's verified bank account, registered at the bank) -------

    def external_account_create(
        self,
        *,
        account_number: str,
        currency: str,
        account_holder_name: str,
        idempotency_key: str,
        country: str = "HK",
        routing_number: str | None = None,
        account_holder_type: str = "company",
        metadata: Mapping[str, Any] | None = None,
    ) -> BankAccount:
        data = self._request(
            "POST",
            f"/v1/accounts/{self.account_id}/external_accounts",
            params={
                "external_account": {
                    "object": "bank_account",
                    "country": country,
                    "currency": currency.lower(),
                    "account_holder_name": account_holder_name,
                    "account_holder_type": account_holder_type,
                    "routing_number": routing_number,
                    "account_number": account_number,
                },
                "metadata": _metadata_out(metadata),
            },
            idempotency_key=idempotency_key,
        )
        return BankAccount.from_stripe(data)

    def external_account_retrieve(self, *, bank_account_id: str) -> BankAccount:
        return BankAccount.from_stripe(
            self._request("GET", f"/v1/accounts/{self.account_id}/external_accounts/{bank_account_id}")
        )

    # --- events (to re-read one, or to catch up after missed deliveries) -------------------------

    def event_retrieve(self, *, event_id: str) -> BankEvent:
        return BankEvent.from_stripe(self._request("GET", f"/v1/events/{event_id}"))

    def events_list(
        self, *, limit: int = 10, starting_after: str | None = None, type: str | None = None
    ) -> Page[BankEvent]:
        data = self._request(
            "GET", "/v1/events", params={"limit": limit, "starting_after": starting_after, "type": type}
        )
        return Page([BankEvent.from_stripe(item) for item in data.get("data") or []], bool(data.get("has_more")))

    # --- test mode (banksim's test helpers; a real bank has none) --------------------------------

    def test_inbound_wire(
        self,
        *,
        amount_minor: int,
        currency: str,
        reference: str | None,
        idempotency_key: str,
        sender_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> InboundWire:
        data = self._request(
            "POST",
            "/v1/test_helpers/inbound_wires",
            params={
                "amount": _amount_check(amount_minor),
                "currency": currency.lower(),
                "reference": reference,
                "sender_name": sender_name,
                "metadata": _metadata_out(metadata),
            },
            idempotency_key=idempotency_key,
        )
        return InboundWire.from_stripe(data)

    def test_payout_return(self, *, payout_id: str, idempotency_key: str, failure_code: str | None = None) -> Payout:
        """A paid payout comes back from the beneficiary's bank: failed, balance credited, ``payout.failed`` sent."""
        data = self._request(
            "POST",
            f"/v1/test_helpers/payouts/{payout_id}/return",
            params={"failure_code": failure_code},
            idempotency_key=idempotency_key,
        )
        return Payout.from_stripe(data)

    def test_faults_set(self, **faults: Any) -> dict[str, Any]:
        """Change banksim's fault injection (latency_ms=…, error_rate=…, fail_payouts=…, reset=True)."""
        return self._request(
            "POST", "/v1/test_helpers/faults", params=faults, idempotency_key=f"faults-{time.time_ns()}"
        )


def rails_client(**overrides: Any) -> RailsClient:
    """A client configured from settings (BANK_RAILS_*); keyword arguments override them."""
    return RailsClient(**overrides)

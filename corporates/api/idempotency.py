"""``Idempotency-Key`` on every API POST: a retried request executes once.

Decorate every API view's ``post`` with ``@idempotent`` (tests/api/test_tenancy.py
checks that each one is). Then, per enterprise and key:

* the first request inserts an ``IdempotencyRecord`` (the unique constraint
  is the lock), executes, and stores its response with a SHA-256 of the
  request (method, path, body, key owner);
* a repeat with the same request gets the stored response again, with
  ``Idempotent-Replayed: true``, and executes nothing;
* a repeat with another request is refused: 422 ``idempotency_key_reused``;
* a repeat while the first is still executing is refused: 409
  ``idempotency_request_in_progress`` (retry shortly, you will get the replay);
* a missing key is 400 ``idempotency_key_required``.

One commit: the record is claimed, the operation runs and its answer is
stored in ONE transaction, so a successful POST commits (and waits for the
WAL on disk) once. A concurrent request with the same key waits on the
record's unique index until that commit and then replays the answer. An
operation that does not succeed (any exception, any non-2xx answer) rolls
the whole transaction back and runs again the way below, with a claim of its
own committed first, so that what a refusal keeps (the refusal's answer, an
inventory alert) is written: a refusal costs two runs, a success one commit.
A deadlock or serialization failure retries the whole transaction
(``config.db.run_in_transaction``).

Responses of 400 (the request did not validate) and 5xx (it did not
complete) are not kept — the record is deleted — so the client can send the
corrected request, or retry, with the same key. Other answers, successes and
refusals by a business rule (404, 409, 422, …), are replayed. A record left "in
progress" by a process that died is taken over by the same request after
``IDEMPOTENCY_IN_PROGRESS_TIMEOUT``; keys are forgotten after
``IDEMPOTENCY_KEY_TTL`` (``idempotency_records_purge``, run by beat).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.response import Response

from config.api.exceptions import PROBLEM_CONTENT_TYPE, ProblemResponse
from config.db import is_retryable, run_in_transaction
from config.errors import DomainError
from corporates.api.tenancy import request_enterprise
from corporates.models import IdempotencyRecord, IdempotencyStatus

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
_REPLAYED_HEADERS = ("Location",)


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was already used for a different request."
    http_status = 422


class IdempotencyRequestInProgress(DomainError):
    code = "idempotency_request_in_progress"
    title = "A request with this Idempotency-Key is still being processed; retry shortly."
    http_status = 409
    retry_after = 1


def _key_error(message: str, code: str) -> ValidationError:
    return ValidationError({IDEMPOTENCY_HEADER: [ErrorDetail(message, code=code)]})


def request_fingerprint(*, request, enterprise_public_id: str) -> str:
    """SHA-256 of what makes two requests "the same": method, path and query, parsed body, owner."""
    canonical = {
        "method": request.method,
        "path": request.get_full_path(),
        "body": request.data,
        "owner": enterprise_public_id,
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _claim(*, enterprise, api_key, key: str, request_hash: str, request) -> tuple[IdempotencyRecord, bool]:
    for _ in range(3):
        try:
            # A savepoint of its own, so that losing the race does not break an
            # enclosing transaction (the test suite's, for one).
            with transaction.atomic():
                _commit_without_waiting_for_disk()
                record = IdempotencyRecord.objects.create(
                    enterprise=enterprise,
                    api_key=api_key,
                    key=key,
                    request_hash=request_hash,
                    method=request.method,
                    path=request.path[:500],
                )
            return record, True
        except IntegrityError:
            record = IdempotencyRecord.objects.filter(enterprise=enterprise, key=key).first()
            if record is None:
                continue  # purged or taken over between our insert and this read
            if not _abandoned(record, request_hash):
                return record, False
            # The process that ran the first request died before answering
            # (no request lives this long): let this identical request run.
            IdempotencyRecord.objects.filter(
                pk=record.pk, status=IdempotencyStatus.IN_PROGRESS, created_at=record.created_at
            ).delete()
    raise IdempotencyRequestInProgress()


def _commit_without_waiting_for_disk() -> None:
    """Let the claim's own COMMIT return before its WAL reaches disk (PostgreSQL only).

    The claim is a lock between concurrent requests: it needs to be visible,
    which it is at once, not durable on its own. Every path after it ends in a
    synchronous commit on the same server (the operation, the completion, or
    the record's deletion), and PostgreSQL flushes WAL in order, so that commit
    makes the claim durable too. If the server crashes before that, the claim
    is lost together with everything the request did, and a retry executes
    afresh — the same outcome as a crash before the claim. This is the path of
    refusals and replays; a success commits once (``_execute_in_one_transaction``).
    Only when the claim is the outermost transaction: ``SET LOCAL`` inside a
    caller's transaction would change the caller's commit.
    """
    connection = transaction.get_connection()
    if connection.vendor != "postgresql" or connection.savepoint_ids:  # a savepoint: not the outermost block
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _abandoned(record: IdempotencyRecord, request_hash: str) -> bool:
    return (
        record.status == IdempotencyStatus.IN_PROGRESS
        and record.request_hash == request_hash
        and record.created_at < timezone.now() - settings.IDEMPOTENCY_IN_PROGRESS_TIMEOUT
    )


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Forget keys older than ``IDEMPOTENCY_KEY_TTL`` (a periodic task); returns how many."""
    cutoff = (now or timezone.now()) - settings.IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _replay(record: IdempotencyRecord) -> Response:
    stored = record.response_body or {}
    headers = {REPLAYED_HEADER: "true", **stored.get("headers", {})}
    if record.response_content_type == PROBLEM_CONTENT_TYPE:
        return ProblemResponse(stored.get("data"), status=record.response_status, headers=headers)
    return Response(stored.get("data"), status=record.response_status, headers=headers)


def idempotent_execute(*, view, request, execute: Callable[[], Response]) -> Response:
    """Run ``execute`` at most once per (enterprise, Idempotency-Key); see the module docstring."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        raise _key_error("Every POST needs an Idempotency-Key header.", "idempotency_key_required")
    if not _KEY_RE.match(key):
        raise _key_error("An Idempotency-Key is 1–255 printable ASCII characters.", "idempotency_key_invalid")
    enterprise = request_enterprise(request)
    request_hash = request_fingerprint(request=request, enterprise_public_id=enterprise.public_id)
    try:
        return _execute_in_one_transaction(
            enterprise=enterprise,
            api_key=request.auth,
            key=key,
            request_hash=request_hash,
            request=request,
            execute=execute,
        )
    except _NotCompleted:
        pass  # rolled back: nothing of that run remains; run with a committed claim
    record, created = _claim(
        enterprise=enterprise, api_key=request.auth, key=key, request_hash=request_hash, request=request
    )
    if not created:
        if record.request_hash != request_hash:
            raise IdempotencyKeyReused()
        if record.status == IdempotencyStatus.IN_PROGRESS:
            raise IdempotencyRequestInProgress()
        return _replay(record)

    try:
        response = execute()
    except Exception as exc:
        response = view.handle_exception(exc)
    if response.status_code >= 500 or response.status_code == 400:
        # Nothing was done: a 400 is a request that did not validate, a 5xx
        # one that did not complete. Forget the key so that the corrected
        # request (or the retry) can run under it.
        record.delete()
        return response
    _complete(record, response)
    return response


class _NotCompleted(Exception):
    """The one-transaction run did not succeed (or met the key already used): roll it back."""


_CLAIM_SQL = """
INSERT INTO {table}
       (enterprise_id, api_key_id, key, request_hash, method, path, status, response_content_type, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, '', %s)
ON CONFLICT (enterprise_id, key) DO NOTHING
RETURNING id
"""


def _execute_in_one_transaction(*, enterprise, api_key, key: str, request_hash: str, request, execute) -> Response:
    """Claim, execute and complete in one transaction; ``_NotCompleted`` (all rolled back) unless it succeeded."""

    def run() -> Response:
        record = IdempotencyRecord(
            enterprise=enterprise,
            api_key=api_key,
            key=key,
            request_hash=request_hash,
            method=request.method,
            path=request.path[:500],
            created_at=timezone.now(),
        )
        # A concurrent request holding this key (uncommitted) makes the INSERT
        # wait for its end; if it committed, no row comes back and the other
        # path replays (or refuses) it.
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM_SQL.format(table=IdempotencyRecord._meta.db_table),
                [
                    enterprise.pk,
                    getattr(api_key, "pk", None),
                    key,
                    request_hash,
                    record.method,
                    record.path,
                    IdempotencyStatus.IN_PROGRESS,
                    record.created_at,
                ],
            )
            row = cursor.fetchone()
        if row is None:
            raise _NotCompleted()
        record.pk = row[0]
        record._state.adding = False
        try:
            response = execute()
        except OperationalError as exc:
            if is_retryable(exc):
                raise  # run_in_transaction runs it all again
            raise _NotCompleted() from exc
        except Exception as exc:
            raise _NotCompleted() from exc
        if not 200 <= response.status_code < 300:
            raise _NotCompleted()
        _complete(record, response)
        return response

    if connection.in_atomic_block:
        # Inside a caller's transaction (the test suite's): a savepoint, so
        # that rolling back undoes this run and only it.
        with transaction.atomic():
            return run()
    return run_in_transaction(run)


def _complete(record: IdempotencyRecord, response: Response) -> None:
    record.status = IdempotencyStatus.COMPLETED
    record.response_status = response.status_code
    record.response_content_type = PROBLEM_CONTENT_TYPE if isinstance(response, ProblemResponse) else "application/json"
    headers = {name: response[name] for name in _REPLAYED_HEADERS if response.has_header(name)}
    record.response_body = {"data": response.data, "headers": headers}
    record.completed_at = timezone.now()
    fields = [IdempotencyRecord._meta.get_field(name) for name in _COMPLETED_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(
            _complete_sql(connection.vendor),
            [field.get_db_prep_save(getattr(record, field.attname), connection) for field in fields] + [record.pk],
        )


_COMPLETED_FIELDS = ("status", "response_status", "response_content_type", "response_body", "completed_at")


@functools.cache
def _complete_sql(vendor: str) -> str:
    # Written once per process (per database vendor), with the values adapted
    # by the model's own fields (get_db_prep_save: the JSON encoder, the
    # datetime): what save(update_fields=...) sends, without compiling an
    # UPDATE on every successful POST (docs/benchmarks.md, FX).
    meta, quote = IdempotencyRecord._meta, connection.ops.quote_name
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in _COMPLETED_FIELDS)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"


def idempotent(handler: Callable) -> Callable:
    """Decorate a view's ``post`` so that it runs through ``idempotent_execute``."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        return idempotent_execute(view=view, request=request, execute=lambda: handler(view, request, *args, **kwargs))

    wrapper.idempotent = True  # type: ignore[attr-defined]
    return wrapper

"""CPU per API request, in-process, through the real WSGI entry point (issue 5). Not a test.

    DATABASE_URL=postgres://…/harbourline_fx_bench python bench/fx_request_cpu.py [--count 500]
    … --profile quote            # cProfile of the quote requests, top functions by own time
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/fx_request_cpu.py --keep --only rates --count N
                                 # instructions: run with N and 2N, the difference ÷ N is per request

Calls ``config.wsgi.application`` — the handler gunicorn runs, with the
``/api/`` middleware — with the WSGI environ of the request an ERP client sends
(Bearer key, Accept, Content-Type, a fresh Idempotency-Key on every POST),
against a fresh database (bench/fx.py's set-up: one funded enterprise and
key) with the server's settings (DEBUG off, the Redis throttle, the
PostgreSQL connection kept). No socket, no gunicorn, no client: what is left
is the CPU of the Django process itself, per request, for

* ``rates``  — GET /api/v1/fx/rates,
* ``quote``  — POST /api/v1/fx/quotes (USD → HKD, fixed sell amount),
* ``accept`` — POST /api/v1/fx/quotes/{id}/accept of a quote made just before.

Every answer's status is checked. CPU time (``time.process_time``) moves with
the host's speed; under callgrind the instruction count does not, so it is
the figure to compare code with (docs/benchmarks.md, FX). The PostgreSQL
backend's CPU is not in either figure.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import database_url, setup_django  # noqa: E402
from bench.fx import QUOTE_BODY, SERVER_ENV, prepare  # noqa: E402

CALLS = ("rates", "quote", "accept")


def environ_for(method: str, path: str, key: str, body: bytes = b"") -> dict:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8765",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8765",
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "HTTP_ACCEPT": "application/json",
        "HTTP_CONNECTION": "close",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if method == "POST":
        environ.update(
            CONTENT_TYPE="application/json",
            CONTENT_LENGTH=str(len(body)),
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )
    return environ


def call(application, environ: dict, wanted: int) -> bytes:
    statuses = []
    body = b"".join(application(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    if not statuses or not statuses[0].startswith(str(wanted)):
        raise SystemExit(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}: {statuses} {body[:300]!r}")
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=500, help="Requests per call (after the warm-up).")
    parser.add_argument("--warmup", type=int, default=50, help="Requests of each call before measuring.")
    parser.add_argument("--only", choices=CALLS, action="append", help="Measure only these calls.")
    parser.add_argument("--profile", choices=CALLS, help="cProfile this call's requests; print the top 40.")
    parser.add_argument("--keep", action="store_true", help="Reuse the database (set up by an earlier run).")
    args = parser.parse_args()

    os.environ.update(SERVER_ENV)
    database_url()
    setup_django()
    import json

    from config.wsgi import application

    if args.keep:
        from corporates.api_keys import api_key_create
        from corporates.models import ApiScope, Enterprise

        enterprise = Enterprise.objects.order_by("id").first()
        keys = [api_key_create(enterprise=enterprise, name="cpu", scopes=list(ApiScope.values), created_by=None).secret]
    else:
        keys = prepare(1)
    key = keys[0]
    rates = environ_for("GET", "/api/v1/fx/rates", key)

    def run_rates(n: int) -> None:
        for _ in range(n):
            call(application, {**rates, "wsgi.input": io.BytesIO()}, 200)

    def make_quotes(n: int) -> list[str]:
        return [
            json.loads(call(application, environ_for("POST", "/api/v1/fx/quotes", key, QUOTE_BODY), 201))["id"]
            for _ in range(n)
        ]

    def accept(ids: list[str]) -> None:
        for quote_id in ids:
            call(application, environ_for("POST", f"/api/v1/fx/quotes/{quote_id}/accept", key, b"{}"), 201)

    run_rates(args.warmup)  # warm-up: imports, the connection, compiled statements, caches
    accept(make_quotes(args.warmup))

    results = {}
    for name in args.only or CALLS:
        ids = make_quotes(args.count) if name == "accept" else []
        profile = cProfile.Profile(time.process_time) if args.profile == name else None
        if profile:
            profile.enable()
        started = time.process_time()
        if name == "rates":
            run_rates(args.count)
        elif name == "quote":
            make_quotes(args.count)
        else:
            accept(ids)
        results[name] = (time.process_time() - started) / args.count * 1e6
        if profile:
            profile.disable()
        if profile:
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("tottime").print_stats(35)
            stats.sort_stats("cumulative").print_stats(60)
            print(out.getvalue())
    print("CPU µs per request in-process (WSGI, no socket): " + ", ".join(f"{k} {v:.0f}" for k, v in results.items()))


if __name__ == "__main__":
    main()

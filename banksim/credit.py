"""Credit an inbound wire at banksim, as a demo or an operator would.

    python -m banksim.credit --amount 250000.00 --currency HKD --reference HLREF1234 [--sender-name "ACME Ltd"]

The amount is in major units (a decimal string, never a float); banksim
receives integer minor units. The bank then sends ``inbound_wire.received``
to the platform's webhook, which mints against the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from decimal import Decimal, InvalidOperation

from banksim.config import DEFAULT_SECRET_KEY

MINOR_PLACES = 2  # HKD, USD and CNH all have two decimal places


def amount_to_minor(text: str) -> int:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {text!r}")
    if not amount.is_finite() or amount <= 0:
        raise ValueError("the amount must be positive")
    minor = amount.scaleb(MINOR_PLACES)
    if minor != minor.to_integral_value():
        raise ValueError(f"at most {MINOR_PLACES} decimal places")
    return int(minor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m banksim.credit", description="Credit an inbound wire at banksim.")
    parser.add_argument("--url", default=os.environ.get("BANKSIM_URL", "http://127.0.0.1:8010"))
    parser.add_argument("--secret-key", default=os.environ.get("BANKSIM_SECRET_KEY", DEFAULT_SECRET_KEY))
    parser.add_argument("--amount", required=True, help="major units, e.g. 1250.00")
    parser.add_argument("--currency", required=True, help="HKD, USD or CNH")
    parser.add_argument("--reference", required=True, help="the enterprise's deposit reference")
    parser.add_argument("--sender-name", default=None)
    parser.add_argument("--idempotency-key", default=None, help="default: a new UUID (each run is a new wire)")
    args = parser.parse_args(argv)
    try:
        minor = amount_to_minor(args.amount)
    except ValueError as exc:
        parser.error(str(exc))
    fields = {"amount": str(minor), "currency": args.currency.lower(), "reference": args.reference}
    if args.sender_name:
        fields["sender_name"] = args.sender_name
    request = urllib.request.Request(  # noqa: S310 - an operator-given URL
        args.url.rstrip("/") + "/v1/test_helpers/inbound_wires",
        data=urllib.parse.urlencode(fields).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {args.secret_key}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Idempotency-Key": args.idempotency_key or str(uuid.uuid4()),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            wire = json.load(response)
    except urllib.error.HTTPError as exc:
        print(exc.read().decode(), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"banksim unreachable at {args.url}: {exc}", file=sys.stderr)
        return 2
    print(f"credited {wire['id']}: {args.amount} {args.currency.upper()} reference {wire['reference']}")
    print(json.dumps(wire, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

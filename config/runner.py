"""`make run`: migrate, seed, and run every process of the platform until Ctrl-C.

Web (gunicorn), a Celery worker, Celery beat — and banksim once it exists —
each as a child process. Ctrl-C (or SIGTERM) stops every one of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = os.environ.get("HARBOURLINE_HOST", "127.0.0.1")
PORT = int(os.environ.get("HARBOURLINE_PORT", "8000"))
PY = sys.executable


def manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=BASE_DIR, check=True)


def ledger_reserves() -> str:
    """The ledger's reserve per currency in banksim's form: ``hkd=…,usd=…,cnh=…`` (minor units)."""
    from settlement.ledger.models import Account, AccountKind

    rows = Account.objects.filter(kind=AccountKind.RESERVE, enterprise__isnull=True).values_list("currency", "balance")
    return ",".join(f"{currency.lower()}={balance}" for currency, balance in rows)


def processes() -> dict[str, list[str]]:
    procs = {
        "web": [
            PY,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"{HOST}:{PORT}",
            "--workers",
            "2",
            "--access-logfile",
            "-",
            "--log-level",
            "warning",
        ],
        # One worker process: SQLite takes one writer at a time anyway.
        "worker": [
            PY,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "warning",
            "-Q",
            "default",
        ],
        "beat": [PY, "-m", "celery", "-A", "config", "beat", "--loglevel", "warning"],
    }
    if (BASE_DIR / "banksim" / "server.py").exists():
        procs["banksim"] = [PY, "-m", "banksim.server"]
    return procs


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings  # noqa: PLC0415 - after the environment is set

    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    (settings.BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    (settings.BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo")

    # The demo's opening balances were minted without wires: a new banksim
    # database opens with the same reserve, so that reconciliation agrees.
    # (banksim applies opening balances only when it creates its database.)
    os.environ.setdefault("BANKSIM_OPENING_BALANCES", ledger_reserves())
    children: dict[str, subprocess.Popen] = {}
    for name, cmd in processes().items():
        children[name] = subprocess.Popen(cmd, cwd=BASE_DIR, start_new_session=True)

    from settlement.management.commands.seed_demo import (
        BACKOFFICE_LOGIN,
        DEMO_ENTERPRISES,
        DEMO_PASSWORD,
        DEMO_TOTP_SECRET,
    )

    print("\nHarbourline is running.\n")
    print(f"  Portal:      http://{HOST}:{PORT}/")
    print(f"  Back office: http://{HOST}:{PORT}/admin/   login {BACKOFFICE_LOGIN[0]} / {BACKOFFICE_LOGIN[1]}")
    print(f"  API docs:    http://{HOST}:{PORT}/api/v1/docs/")
    print("  Demo logins (password " + DEMO_PASSWORD + "):")
    for legal_name, _, _, login, _ in DEMO_ENTERPRISES:
        print(f"    {login:<36} {legal_name}")
    print(f"  Two-factor code for the demo logins and the back office: TOTP key {DEMO_TOTP_SECRET}")
    print("    in any authenticator app (admin asks for it after the password),")
    print("    or `.venv/bin/python manage.py demo_totp` prints the current code.")
    print("\nCtrl-C stops every process.\n", flush=True)

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping the platform", file=sys.stderr)
                stopping, exit_code = True, 1
                break
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.time() + 10
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
    print("stopped.")
    return exit_code


if __name__ == "__main__":
    sys.path.insert(0, str(BASE_DIR))
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    sys.exit(main())

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
BANKSIM_PORT = int(os.environ.get("BANKSIM_PORT", "8010"))
PY = sys.executable


def wire_the_processes_together() -> None:
    """Point banksim and the platform at each other, whatever ports were chosen.

    Every child inherits this environment; values already set win.
    """
    os.environ.setdefault("BANKSIM_PORT", str(BANKSIM_PORT))
    os.environ.setdefault("BANKSIM_WEBHOOK_URL", f"http://{HOST}:{PORT}/webhooks/bank/")
    os.environ.setdefault("BANK_RAILS_BASE_URL", f"http://127.0.0.1:{BANKSIM_PORT}")


def ports_in_use() -> list[str]:
    import socket

    taken = []
    for name, port in (("HARBOURLINE_PORT", PORT), ("BANKSIM_PORT", BANKSIM_PORT)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                taken.append(f"port {port} is in use (choose another with {name}=…)")
    return taken


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
            # Requests go to a file, so that the terminal keeps the banner readable.
            "--access-logfile",
            str(LOG_DIR / "access.log"),
            "--log-level",
            "warning",
        ],
        # One worker process: SQLite takes one writer at a time anyway.
        "worker": [
            PY,
            "-m",
            "celery",
            "--quiet",  # no start-up banner: the runner prints what matters
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
        "beat": [PY, "-m", "celery", "--quiet", "-A", "config", "beat", "--loglevel", "warning"],
    }
    if (BASE_DIR / "banksim" / "server.py").exists():
        procs["banksim"] = [PY, "-m", "banksim.server"]
    return procs


LOG_DIR = BASE_DIR / "var" / "log"


def wait_until_serving(children: dict[str, subprocess.Popen], timeout_s: float = 60) -> None:
    """Wait until the web server answers, so that the banner is the last thing printed."""
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout_s
    while time.time() < deadline and all(child.poll() is None for child in children.values()):
        try:
            urllib.request.urlopen(f"http://{HOST}:{PORT}/login/", timeout=2)  # noqa: S310 - our own URL
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.5)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings  # noqa: PLC0415 - after the environment is set

    problems = ports_in_use()
    if problems:
        print("cannot start: " + "; ".join(problems), file=sys.stderr)
        return 2
    LOG_DIR.mkdir(parents=True, exist_ok=True)

    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    (settings.BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    (settings.BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    (settings.BROKER_DIR / "control").mkdir(parents=True, exist_ok=True)
    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo")
    # Beat publishes rates every few seconds; publish once now, so that the
    # swap page quotes from the first second.
    from fx.services import rates_publish

    rates_publish()

    # The demo's opening balances were minted without wires: a new banksim
    # database opens with the same reserve, so that reconciliation agrees.
    # (banksim applies opening balances only when it creates its database.)
    os.environ.setdefault("BANKSIM_OPENING_BALANCES", ledger_reserves())
    children: dict[str, subprocess.Popen] = {}
    for name, cmd in processes().items():
        children[name] = subprocess.Popen(cmd, cwd=BASE_DIR, start_new_session=True)

    wait_until_serving(children)

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
    print(f"  Bank:        http://127.0.0.1:{BANKSIM_PORT}/ (banksim)")
    print(f"  Web requests are logged to {LOG_DIR / 'access.log'}")
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
    wire_the_processes_together()
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    sys.exit(main())

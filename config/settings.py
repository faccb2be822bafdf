"""Settings, read from the environment (12-factor).

With no environment at all this is the embedded default that `make run` uses:
SQLite under var/, kombu's filesystem transport as the Celery broker, banksim
on localhost. Production and the test suite set DATABASE_URL and
CELERY_BROKER_URL (PostgreSQL, Redis or RabbitMQ); docs/operations.md lists
every variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from config import money

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HARBOURLINE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or env_bool("HARBOURLINE_EMBEDDED", True)):
        raise RuntimeError("SECRET_KEY must be set outside the embedded default")
    SECRET_KEY = "embedded-default-insecure-key-do-not-use-in-production"  # noqa: S105 - embedded default only
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://localhost:8000,http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "djmoney",
    "corporates",
    "fx",
    "settlement",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ----------------------------------------------------------------
# ATOMIC_REQUESTS stays off: the outermost service of a use case opens the
# transaction (STYLE.md, "Transactions and locking").
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'harbourline.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers wait for each other instead of failing at once; WAL lets the
    # web server read while the worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Asia/Hong_Kong"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))

LOGIN_URL = "/login/"

# --- money -------------------------------------------------------------------
CURRENCIES = money.CURRENCY_CODES
CURRENCY_CHOICES = list(money.CURRENCY_CHOICES)
CURRENCY_DECIMAL_PLACES = 2
DEFAULT_CURRENCY = "HKD"

# --- ledger ------------------------------------------------------------------
# "auto": on PostgreSQL an entry is posted by one server-side function call;
# elsewhere (SQLite) by the portable ORM path. "orm" forces the portable path.
LEDGER_POST_PATH = os.environ.get("LEDGER_POST_PATH", "auto")
LEDGER_RETRY_ATTEMPTS = int(os.environ.get("LEDGER_RETRY_ATTEMPTS", "5"))

# --- Celery ------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- REST API ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Harbourline API",
    "DESCRIPTION": "Settlement of HKD, USD and CNH stablecoins between verified enterprises.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- sessions and security ---------------------------------------------------
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(int(timedelta(hours=8).total_seconds()))))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- onboarding ----------------------------------------------------------------
# Called with enterprise=… inside the approval transaction (corporates does not
# import settlement; the ledger opens the wallets through this hook).
ENTERPRISE_APPROVAL_HOOKS = ["settlement.ledger.services.wallets_open"]

# --- portal: sign-in, two-factor, throttling, invitations ----------------------
# Owned by the portal shell (corporates/views.py, corporates/permissions.py).
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp", "axes"]
# OTPMiddleware right after authentication (it wraps request.user with
# is_verified()); AxesMiddleware last, so it turns a lockout into its response.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
# What an /api/ request runs through (config/wsgi.py): the same security
# headers as the portal, none of the session machinery a Bearer key never uses.
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# Axes' backend comes first: it refuses a locked-out username before the
# password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "Harbourline")
# Failed sign-ins: 5 failures for one username, or from one address, lock it
# for the cool-off period. Attempts live in the database, so the test suite's
# transactions (or axes.utils.reset()) clear them.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Invitations: how long a link stays valid; mail goes through Django's email
# backend (the console in the embedded default).
INVITATION_TTL = timedelta(hours=int(os.environ.get("INVITATION_TTL_HOURS", "72")))
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Harbourline <no-reply@harbourline.example>")
# Development only: the link (a credential) is also written to the log.
INVITATION_LOG_LINKS = env_bool("INVITATION_LOG_LINKS", DEBUG or env_bool("HARBOURLINE_EMBEDDED", True))
# The portal reads the ledger through these (corporates does not import settlement).
PORTAL_BALANCES_SELECTOR = "settlement.ledger.selectors.balances_for"
PORTAL_STATEMENT_SELECTOR = "settlement.ledger.statements.statement_for"
# The statement page shows this many lines of a period; its CSV has them all.
PORTAL_STATEMENT_PAGE_LINES = int(os.environ.get("PORTAL_STATEMENT_PAGE_LINES", "1000"))

# --- FX (fx/) -------------------------------------------------------------------
# A quote is firm for FX_QUOTE_TTL_SECONDS; a USD leg older than
# FX_RATES_STALE_AFTER_SECONDS is not quotable (rates_stale). The beat task
# "fx: publish rates" (every 5 s; created by fx/migrations/0002, editable in
# admin) publishes them.
FX_QUOTE_TTL_SECONDS = int(os.environ.get("FX_QUOTE_TTL_SECONDS", "30"))
FX_RATES_STALE_AFTER_SECONDS = int(os.environ.get("FX_RATES_STALE_AFTER_SECONDS", "60"))
FX_DEFAULT_SPREAD_BPS = int(os.environ.get("FX_DEFAULT_SPREAD_BPS", "30"))
FX_DEFAULT_SINGLE_SWAP_LIMIT_USD = os.environ.get("FX_DEFAULT_SINGLE_SWAP_LIMIT_USD", "1000000.00")
# "auto": on PostgreSQL quote_create and quote_accept write through lean SQL
# statements (the locked section of an accept above all); elsewhere (SQLite)
# through the ORM. "orm" forces the ORM path.
FX_SQL_PATH = os.environ.get("FX_SQL_PATH", "auto")
# A manual USD leg outside these bounds is refused (HKD: the band of the peg).
FX_MANUAL_RATE_BOUNDS = {"HKD": ("7.75", "7.85"), "CNH": ("6.00", "8.50")}
# The simulated feed's bounded random walk per USD leg (units per 1 USD;
# Decimal strings). HKD stays inside the 7.75–7.85 band of the peg.
FX_SIMULATED_LEGS = {
    "HKD": {
        "reference": "7.8000",
        "low": "7.7500",
        "high": "7.8500",
        "step": "0.0001",
        "max_steps": 5,
        "reversion": "0.05",
    },
    "CNH": {
        "reference": "7.1000",
        "low": "6.9500",
        "high": "7.2500",
        "step": "0.0001",
        "max_steps": 10,
        "reversion": "0.05",
    },
}

# --- obligations and netting (issue 6) ---------------------------------------------
# The single-payment limit and approval threshold of an obligation are the
# payer's limits in corporates (KYB_DEFAULT_LIMITS, overridden per enterprise).
OBLIGATION_BULK_MAX_ROWS = int(os.environ.get("OBLIGATION_BULK_MAX_ROWS", "10000"))
# An unpayable pair rolls into the next batch; its obligations fail after this
# many rolls, or once their value date is this many days past.
NETTING_MAX_ROLLS = int(os.environ.get("NETTING_MAX_ROLLS", "3"))
NETTING_MAX_DAYS_PAST_VALUE_DATE = int(os.environ.get("NETTING_MAX_DAYS_PAST_VALUE_DATE", "5"))
# Test-only: pause this long at NETTING_TEST_PAUSE_AT ("between_passes" or
# "in_pass", before the pass commits) so a test can kill the worker mid-batch.
NETTING_TEST_PAUSE_SECONDS = float(os.environ.get("NETTING_TEST_PAUSE_SECONDS", "0"))
NETTING_TEST_PAUSE_AT = os.environ.get("NETTING_TEST_PAUSE_AT", "between_passes")
# Task modules outside an app's tasks.py (autodiscovery finds only those).
CELERY_IMPORTS = ["settlement.netting.tasks"]
# Memory for the sorts and hashes of one batch step (SET LOCAL, PostgreSQL).
NETTING_WORK_MEM = os.environ.get("NETTING_WORK_MEM", "256MB")

# --- KYB: documents, sanctions screening, limits --------------------------------
# Owned by the KYB domain (corporates/onboarding/, corporates/sanctions.py).
# KYB documents live under MEDIA_ROOT/kyb/ and are served only through an
# authorising view; MEDIA_URL is deliberately not routed.
KYB_DOCUMENT_MAX_BYTES = int(os.environ.get("KYB_DOCUMENT_MAX_BYTES", str(5 * 1024 * 1024)))
# rapidfuzz token_sort_ratio (0-100) at or above which a name match becomes an alert.
SANCTIONS_MATCH_THRESHOLD = int(os.environ.get("SANCTIONS_MATCH_THRESHOLD", "88"))
SANCTIONS_LIST_PATH = Path(
    os.environ.get("SANCTIONS_LIST_PATH", BASE_DIR / "corporates" / "data" / "sanctions_list.csv")
)
# Default limits per currency (no FX conversion: each currency has its own
# figures); the back office overrides them per enterprise in admin. Amounts
# are decimal strings. approval_threshold: above it a checker must approve.
KYB_DEFAULT_LIMITS = {
    "HKD": {"single_payment": "10000000.00", "daily_redemption": "50000000.00", "approval_threshold": "1000000.00"},
    "USD": {"single_payment": "1250000.00", "daily_redemption": "6250000.00", "approval_threshold": "125000.00"},
    "CNH": {"single_payment": "9000000.00", "daily_redemption": "45000000.00", "approval_threshold": "900000.00"},
}

# --- ERP API foundations (issue 3): auth, errors, pagination, throttling, webhooks -----
# Owned by the API foundations (config/api/, corporates/api/, corporates/webhooks.py).
REST_FRAMEWORK.update(
    {
        "DEFAULT_AUTHENTICATION_CLASSES": ["corporates.api.authentication.ApiKeyAuthentication"],
        "DEFAULT_PARSER_CLASSES": ["config.api.parsers.StrictJSONParser"],
        "DEFAULT_PERMISSION_CLASSES": [
            "corporates.api.permissions.IsApiClient",
            "corporates.api.permissions.HasScope",
        ],
        "DEFAULT_THROTTLE_CLASSES": ["corporates.api.throttling.ApiKeyRateThrottle"],
        "DEFAULT_PAGINATION_CLASS": "config.api.pagination.ApiCursorPagination",
        "PAGE_SIZE": 50,
        "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
        "EXCEPTION_HANDLER": "config.api.exceptions.api_exception_handler",
        "UNAUTHENTICATED_USER": None,
    }
)
SPECTACULAR_SETTINGS.update(
    {
        # The schema and its docs are public and need no key.
        "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
        "SERVE_AUTHENTICATION": [],
        "POSTPROCESSING_HOOKS": [
            "drf_spectacular.hooks.postprocess_schema_enums",
            "config.api.schema.problem_details_hook",
        ],
        "COMPONENT_SPLIT_REQUEST": True,
        # One schema component for the platform's currencies, whichever field names them.
        "ENUM_NAME_OVERRIDES": {"CurrencyEnum": "config.money.CURRENCY_CODES"},
    }
)
# Per API key, "<count>/<s|min|hour>"; counted in the api_throttle cache,
# Redis when one is configured so that every web worker shares the budget.
API_KEY_RATE_LIMIT = os.environ.get("API_KEY_RATE_LIMIT", "600/min")
API_THROTTLE_CACHE_URL = os.environ.get("API_THROTTLE_CACHE_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
CACHES = globals().get("CACHES") or {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CACHES["api_throttle"] = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": API_THROTTLE_CACHE_URL}
    if API_THROTTLE_CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "api-throttle"}
)
# Cross-process flags (config/flags.py), in the same Redis; per process without one.
CACHES["coordination"] = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": API_THROTTLE_CACHE_URL}
    if API_THROTTLE_CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "coordination"}
)
# Webhooks: each delivery is retried with exponential backoff (base · 2^n,
# capped) until WEBHOOK_RETRY_WINDOW after it was created.
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))
WEBHOOK_RETRY_BASE = timedelta(seconds=int(os.environ.get("WEBHOOK_RETRY_BASE_SECONDS", "30")))
WEBHOOK_RETRY_MAX_DELAY = timedelta(hours=int(os.environ.get("WEBHOOK_RETRY_MAX_DELAY_HOURS", "8")))
WEBHOOK_RETRY_WINDOW = timedelta(hours=int(os.environ.get("WEBHOOK_RETRY_WINDOW_HOURS", "24")))
WEBHOOK_SWEEP_BUDGET_SECONDS = int(os.environ.get("WEBHOOK_SWEEP_BUDGET_SECONDS", "240"))
# http:// and private addresses only where the receivers are local (embedded default, tests).
WEBHOOK_ALLOW_INSECURE_URLS = env_bool("WEBHOOK_ALLOW_INSECURE_URLS", env_bool("HARBOURLINE_EMBEDDED", True))
# Idempotency-Keys are remembered this long (a retry after that executes again);
# a request still "in progress" after the timeout died with its process.
IDEMPOTENCY_KEY_TTL = timedelta(hours=int(os.environ.get("IDEMPOTENCY_KEY_TTL_HOURS", str(7 * 24))))
IDEMPOTENCY_IN_PROGRESS_TIMEOUT = timedelta(
    minutes=int(os.environ.get("IDEMPOTENCY_IN_PROGRESS_TIMEOUT_MINUTES", "10"))
)

# --- bank rails (banksim or any Stripe-compatible server; settlement/rails.py) ---
# The defaults match `python -m banksim.server` with no arguments (make run):
# test-mode keys only; production sets all three secrets from the environment.
BANK_RAILS_BASE_URL = os.environ.get("BANK_RAILS_BASE_URL", "http://127.0.0.1:8010")
BANK_RAILS_SECRET_KEY = os.environ.get("BANK_RAILS_SECRET_KEY", "sk_test_banksim_harbourline")
BANK_RAILS_WEBHOOK_SECRET = os.environ.get("BANK_RAILS_WEBHOOK_SECRET", "whsec_banksim_harbourline")
BANK_RAILS_ACCOUNT_ID = os.environ.get("BANK_RAILS_ACCOUNT_ID", "acct_harbourline")
BANK_RAILS_CONNECT_TIMEOUT_S = float(os.environ.get("BANK_RAILS_CONNECT_TIMEOUT_S", "3"))
BANK_RAILS_TIMEOUT_S = float(os.environ.get("BANK_RAILS_TIMEOUT_S", "10"))
# Retries of one call, same Idempotency-Key, backoff base · 2^n (capped at 2 s) with jitter.
BANK_RAILS_MAX_RETRIES = int(os.environ.get("BANK_RAILS_MAX_RETRIES", "3"))
BANK_RAILS_RETRY_BACKOFF_S = float(os.environ.get("BANK_RAILS_RETRY_BACKOFF_S", "0.25"))
# Replay window of the bank's webhook signatures (Stripe's default: 5 minutes).
BANK_RAILS_WEBHOOK_TOLERANCE_S = int(os.environ.get("BANK_RAILS_WEBHOOK_TOLERANCE_S", "300"))

# --- mint, redeem, reserves (issue 4; settlement/deposits, redemptions, reserves.py) ---
# The custodian's segregated reserve account per currency, shown in deposit
# instructions beside the enterprise's own reference.
RESERVE_CUSTODIAN_ACCOUNTS = {
    code: {
        "bank_name": os.environ.get("RESERVE_CUSTODIAN_BANK", "Harbour Custodian Bank (simulated)"),
        "account_name": f"Harbourline Reserve {code} (segregated)",
        "account_number": os.environ.get(f"RESERVE_ACCOUNT_{code}", f"000-{code}-880001"),
        "swift_code": os.environ.get("RESERVE_CUSTODIAN_SWIFT", "HBCBHKHHXXX"),
    }
    for code in money.CURRENCY_CODES
}
# Approved redemptions with no payout recorded after this long are queued again
# (their task was lost or its worker died); the key makes the bank pay once.
REDEMPTION_PAYOUT_SWEEP_AFTER_S = int(os.environ.get("REDEMPTION_PAYOUT_SWEEP_AFTER_S", "60"))
# The Celery queue of payout creation (workers that reach the bank listen on it).
REDEMPTION_PAYOUT_QUEUE = os.environ.get("REDEMPTION_PAYOUT_QUEUE", "default")
# The payout dispatcher (settlement.redemptions.services.payouts_dispatch):
# redemptions claimed per statement, how long a claim keeps them from other
# dispatchers, and how long a queued dispatch stands for every approval after
# it before the next approval queues another (its message may have been lost).
REDEMPTION_PAYOUT_BATCH = int(os.environ.get("REDEMPTION_PAYOUT_BATCH", "25"))
REDEMPTION_PAYOUT_CLAIM_S = int(os.environ.get("REDEMPTION_PAYOUT_CLAIM_S", "60"))
REDEMPTION_PAYOUT_WAKE_TTL_S = int(os.environ.get("REDEMPTION_PAYOUT_WAKE_TTL_S", "5"))
# A dispatch with nothing left to do looks again every POLL_S for LINGER_S
# before it stops (approvals meanwhile need no message of their own).
REDEMPTION_PAYOUT_LINGER_S = float(os.environ.get("REDEMPTION_PAYOUT_LINGER_S", "1"))
REDEMPTION_PAYOUT_POLL_S = float(os.environ.get("REDEMPTION_PAYOUT_POLL_S", "0.02"))
# A dispatch that has run this long queues its successor and stops (the task's time limit is 600 s).
REDEMPTION_PAYOUT_DISPATCH_MAX_S = float(os.environ.get("REDEMPTION_PAYOUT_DISPATCH_MAX_S", "240"))
# Bank calls a dispatch makes at once (threads of the worker process).
REDEMPTION_PAYOUT_CONCURRENCY = int(os.environ.get("REDEMPTION_PAYOUT_CONCURRENCY", "4"))
# Redemptions whose deadline is this close count as "at risk" in the back office.
REDEMPTION_AT_RISK_HOURS = int(os.environ.get("REDEMPTION_AT_RISK_HOURS", "4"))
# A ledger/custodian difference must persist this long (a second look) before it
# becomes an alert: a payout or wire in flight between the two looks is not one.
RESERVES_RECONCILE_CONFIRM_S = float(os.environ.get("RESERVES_RECONCILE_CONFIRM_S", "5"))
RESERVES_ATTESTATION_DIR = Path(os.environ.get("RESERVES_ATTESTATION_DIR", VAR_DIR / "attestations"))
# Test-only: the payout worker dies right after the bank made the payout, before recording it.
REDEMPTION_TEST_CRASH_AFTER_PAYOUT = env_bool("REDEMPTION_TEST_CRASH_AFTER_PAYOUT", False)

# --- redemption throughput (issue 4, bench-redeem) ---
# Celery's Django fix-up closes the task's database connection before and
# after every task unless this is set; a new PostgreSQL connection per
# payout task then costs more than the task. Set (e.g. 1000) to keep a
# worker thread's connection for that many tasks; unset keeps Celery's default.
if os.environ.get("CELERY_DB_REUSE_MAX"):
    CELERY_DB_REUSE_MAX = int(os.environ["CELERY_DB_REUSE_MAX"])

# --- multilateral netting (issue 6) ---
# Currencies whose batches settle each participant's multilateral net position
# through the platform's clearing account (net debtors pay in, then net
# creditors are paid out) instead of one transfer per pair. Comma-separated,
# e.g. "HKD,CNH"; empty (the default) keeps every currency bilateral.
NETTING_MULTILATERAL_CURRENCIES = [
    code.strip().upper() for code in os.environ.get("NETTING_MULTILATERAL_CURRENCIES", "").split(",") if code.strip()
]
if set(NETTING_MULTILATERAL_CURRENCIES) - set(money.CURRENCY_CODES):
    raise ValueError(f"NETTING_MULTILATERAL_CURRENCIES: unknown currency in {NETTING_MULTILATERAL_CURRENCIES}")

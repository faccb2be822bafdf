# Harbourline. `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check

# The test suite and benchmarks run on PostgreSQL and Redis at 127.0.0.1.
PG_URL ?= postgres://root@127.0.0.1:5432/harbourline
REDIS_URL ?= redis://127.0.0.1:6379/0
TEST_ENV := DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL) HARBOURLINE_EMBEDDED=0 \
	SECRET_KEY=test-only-secret-key DJANGO_SETTINGS_MODULE=config.settings

.PHONY: run reset test lint bench-ledger bench-netting bench-fx bench-redeem services chromium install install-dev

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt 2> >(grep -v "is ignored: it is neither" >&2)
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PIP) install -r requirements-dev.txt 2> >(grep -v "is ignored: it is neither" >&2)
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: the whole platform on the embedded default (SQLite, filesystem broker)
run: $(VENV)/.installed
	$(PY) -m config.runner

## reset: forget the embedded default's data; the next `make run` starts afresh
reset:
	rm -rf var

## services: start PostgreSQL and Redis at 127.0.0.1 when they are down
services:
	@pg_isready -q -h 127.0.0.1 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
	@psql -h 127.0.0.1 -U root -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'harbourline'" | grep -q 1 \
		|| createdb -h 127.0.0.1 -U root harbourline

## chromium: Debian's chromium for the browser tests
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

## test: the whole suite on PostgreSQL and Redis
test: $(VENV)/.installed-dev services chromium
	@mkdir -p var/static
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/ruff check .
	$(TEST_ENV) $(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## bench-ledger: transfers per second through the ledger service (not a test)
bench-ledger: $(VENV)/.installed-dev services
	$(TEST_ENV) DATABASE_URL=postgres://root@127.0.0.1:5432/harbourline_bench $(PY) bench/ledger.py

## bench-fx: FX quotes and quote+accept pairs per second, through gunicorn and the API (not a test)
bench-fx: $(VENV)/.installed-dev services
	$(TEST_ENV) DATABASE_URL=postgres://root@127.0.0.1:5432/harbourline_fx_bench $(PY) bench/fx.py

## bench-netting: ingest 1M obligations, net and settle them in one batch on a real worker (not a test)
## (smaller: make bench-netting NETTING_ARGS="--obligations 200000 --skip-uniform")
bench-netting: $(VENV)/.installed-dev services
	$(TEST_ENV) DATABASE_URL=postgres://root@127.0.0.1:5432/harbourline_bench_netting \
		CELERY_BROKER_URL=redis://127.0.0.1:6379/3 $(PY) bench/netting.py $(NETTING_ARGS)

## bench-redeem: 2,000 redemptions end to end (approval to paid) through a Celery worker, gunicorn and banksim
## (smaller: make bench-redeem REDEEM_ARGS="--count 500 --rate 50")
bench-redeem: $(VENV)/.installed-dev services
	$(TEST_ENV) DATABASE_URL=postgres://root@127.0.0.1:5432/harbourline_bench_redeem CELERY_BROKER_URL=redis://127.0.0.1:6379/2 $(PY) bench/redeem.py $(REDEEM_ARGS)

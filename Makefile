# Two commands on a fresh machine:
#   make run   installs everything and serves the demo at http://127.0.0.1:$(PORT)
#   make test  installs everything and runs the test suite (PostgreSQL, Redis, real workers)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/medgen
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
# The tests' own key: a configured deployment (DATABASE_URL set) refuses to start without one.
TEST_SECRET_KEY ?= medgen-tests-only-not-a-secret

.PHONY: install install-dev run test test-postgres test-embedded lint format migrate demo clean bench baselines

$(VENV)/.runtime: requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt requirements-refs.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -r requirements-refs.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# The image viewer: Cornerstone3D bundled by esbuild into static/viewer/ (frontend/build.mjs),
# from the lock file, rebuilt only when the lock file or frontend/ changes (Node 18+ and npm).
VIEWER_STAMP := static/viewer/.built
$(VIEWER_STAMP): package.json package-lock.json $(wildcard frontend/*.js frontend/*.mjs) static/js/dom.js
	npm ci --no-audit --no-fund --loglevel=error
	node frontend/build.mjs
	touch $@
install: $(VIEWER_STAMP)
install-dev: $(VIEWER_STAMP)

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0

run: migrate
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py serve --port $(PORT)

test: install-dev
	bash scripts/start-services.sh
	bash scripts/install-chromium.sh
	$(PY) manage.py collectstatic --noinput -v0
	$(MAKE) --no-print-directory lint
	node --test frontend/test/
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory test-embedded

# The suite on PostgreSQL and Redis: TEST_PROCESSES pytest processes (pytest-xdist; each its own test database and
# Redis broker database, tests/support/xdist_env.py), then the tests that time themselves (`serial`) alone.
TEST_PROCESSES ?= 2
POSTGRES_TEST_ENV = DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) SECRET_KEY=$(TEST_SECRET_KEY) \
	MEDGEN_DATA_DIR=$$(mktemp -d)
test-postgres:
	$(POSTGRES_TEST_ENV) $(PY) -m pytest -m "not embedded and not serial" -n $(TEST_PROCESSES) --dist loadfile --durations=30 $(PYTEST_ARGS)
	$(POSTGRES_TEST_ENV) $(PY) -m pytest -m "serial and not embedded" $(PYTEST_ARGS)

# The embedded default: no configuration at all (SQLite, filesystem broker).
test-embedded:
	env -u DATABASE_URL -u CELERY_BROKER_URL -u SECRET_KEY MEDGEN_DATA_DIR=$$(mktemp -d) \
		$(PY) -m pytest -m embedded $(PYTEST_ARGS)

# The demo's shipped baselines (demo/artifacts/ + manifest.json), retrained from their seed on the CPU (one thread,
# about 10 CPU-minutes); see demo/shipped.py.
baselines: install
	$(PY) scripts/train_baselines.py

# Benchmarks against the peer libraries (not part of the tests: timings vary with the machine).
# Each prints its ratio to the peer quiet and under 2 busy cores; BENCH_ARGS=--quick for short runs.
BENCH_ARGS ?=
bench: install-dev
	for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script $(BENCH_ARGS) || exit 1; done

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var staticfiles static/viewer node_modules

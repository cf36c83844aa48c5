# Countersign: the README's two commands, plus a few for developers.
# `make run`  — bootstrap .venv, migrate, load the demo, serve on http://127.0.0.1:8000
# `make test` — bootstrap .venv, collect static files, run the whole pytest suite
# With DATABASE_URL=postgres://… and CELERY_BROKER_URL=redis://… both use PostgreSQL and Redis.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test bench soak venv migrate static clean lint oidc-provider fixtures screenshots

$(STAMP): requirements.txt requirements-dev.txt
	@echo "==> Creating virtualenv in $(VENV) and installing requirements"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

migrate: venv
	@db=$${DATABASE_URL:+PostgreSQL}; echo "==> Applying migrations ($${db:-SQLite in var/})"
	@$(PY) manage.py migrate --noinput -v0

static: venv
	@echo "==> Collecting static files"
	@$(PY) manage.py collectstatic --noinput -v0

run: migrate static
	@echo "==> Loading the demo (seed_demo)"
	@$(PY) manage.py seed_demo
	@$(PY) manage.py sync_schedules
	@pids=""; trap 'kill $$pids 2>/dev/null' EXIT INT TERM; \
	if [ -n "$$CELERY_BROKER_URL" ]; then \
		echo "==> Starting a Celery worker on the configured broker (log: var/worker.log)"; \
		$(VENV)/bin/celery -A config worker --loglevel info > var/worker.log 2>&1 & pids="$$pids $$!"; \
	fi; \
	echo "==> Starting Celery beat: scheduled governance (log: var/beat.log)"; \
	$(VENV)/bin/celery -A config beat --loglevel info > var/beat.log 2>&1 & pids="$$pids $$!"; \
	echo "==> Serving on http://127.0.0.1:8000 (log in as mgr / countersign-demo; Ctrl-C to stop)"; \
	$(PY) manage.py runserver 127.0.0.1:8000

# The real OpenID provider the single sign-on browser tests run on 127.0.0.1 (npm oidc-provider,
# pinned in tests/e2e/oidc/package-lock.json; Node.js 20 or later).
OIDC_PROVIDER := tests/e2e/oidc/node_modules/.package-lock.json
$(OIDC_PROVIDER): tests/e2e/oidc/package.json tests/e2e/oidc/package-lock.json
	@echo "==> Installing the test OpenID provider (npm ci in tests/e2e/oidc)"
	@npm ci --prefix tests/e2e/oidc --no-audit --no-fund --silent
	@touch $(OIDC_PROVIDER)

oidc-provider: $(OIDC_PROVIDER)

# The test fixtures of package.json (payloads nobody here wrote: @octokit/webhooks-examples; GitHub's
# OpenAPI description, @octokit/openapi, that the fake GitHub API checks requests against), exactly as
# package-lock.json pins them. Needs Node 20 and npm.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@echo "==> Installing the test fixtures of package.json (npm ci)"
	@npm ci --ignore-scripts --no-audit --no-fund --silent
	@touch $(NODE_STAMP)

fixtures: $(NODE_STAMP)

# Whole files per worker (--dist loadfile), handed out in the order tests/conftest.py sorts them
# (the long files first); xdist would otherwise reorder files by their number of tests, which put
# the long one-test files (the grant-combination sweeps, the drills) last, on one busy worker.
test: static $(OIDC_PROVIDER) fixtures
	@db=$${DATABASE_URL:+PostgreSQL}; echo "==> Running the test suite ($${db:-SQLite})"
	@$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# `make screenshots` — the README's screenshots (docs/img/), taken by the browser tests that walk those
# pages; only when asked: `make test` never writes docs/img/ (tests/e2e/conftest.py, screenshot()).
SCREENSHOT_TESTS := tests/e2e/test_signoff_and_deploy.py tests/e2e/test_evidence_export.py tests/e2e/test_mobile_and_a11y.py
screenshots: static fixtures
	@echo "==> Regenerating the README's screenshots in docs/img/ from the browser tests"
	@COUNTERSIGN_SCREENSHOTS=1 $(PY) -m pytest -p no:cacheprovider -q $(SCREENSHOT_TESTS)

# `make bench` — every benchmark beside its floor (bench/run.py; docs/performance.md). PostgreSQL
# (DATABASE_URL) is the shape that counts: gunicorn + locust per scale in databases of its own.
# Knobs: BENCH_SCALES=small,medium,large BENCH_ONLY=gate,write,pages,queries,campaign,export
# BENCH_SECONDS=20 BENCH_DB_PREFIX=countersign_bench BENCH_TEMPLATE_LARGE=<seeded db to copy>.
bench: venv
	@echo "==> Running benchmarks"
	@$(PY) bench/run.py

soak: venv
	@echo "==> Soak: 50 API clients for 60 s against gunicorn + PostgreSQL (a throwaway *_soak database)"
	@$(PY) bench/soak.py

lint: venv
	@echo "==> Lint: ruff (bugs) and bandit (security), both configured in pyproject.toml"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/bandit -c pyproject.toml -r core config audit governance releases identity integrations compliance bench -q

clean:
	rm -rf $(VENV) var .pytest_cache node_modules

# Streaming lakehouse: the two commands of the README's Quick start are `make demo` and `make test`.
SHELL := /bin/bash
ENV := source scripts/env.sh &&
PY := .venv/bin/python
PYTEST_ARGS ?=

LINT_PATHS := plugins dags tests bench scripts

.PHONY: help install install-python jars up down status reset demo lint format test test-unit test-integration lock bench-freshness

help:
	@echo "make demo        install what is missing, start the stack, deploy through the scheduler, run MySQL -> Paimon ODS -> DWD -> DWS end to end"
	@echo "make test        install everything, lint, unit tests, then integration tests on the real stack (started if needed)"
	@echo "make test-unit   unit tests; needs only the Python env (make install-python)"
	@echo "make lint        ruff check + ruff format --check (pyproject.toml); make format applies the fixes"
	@echo "make up|down|status|reset   local stack: MariaDB, Flink session cluster + SQL Gateway, PostgreSQL, Airflow services"
	@echo "make install     Python env, Flink distribution, connector jars, mariadb-server, postgresql, chromium"
	@echo "make install-python   the Python env alone (.venv with requirements.txt and requirements-dev.txt)"

install:
	@bash scripts/install.sh

install-python:
	@bash scripts/install.sh python

jars: install

# Starts what is not running: MariaDB, Flink + SQL Gateway, PostgreSQL, the Airflow services.
up: install
	@bash scripts/stack.sh up

# Stops every service `up` started: the Airflow services first, then Flink, MariaDB, PostgreSQL.
down:
	@bash scripts/stack.sh down

status:
	@bash scripts/stack.sh status

# Stops everything, then deletes all local data (MariaDB, Postgres, warehouse, checkpoints, Airflow home).
reset:
	@bash scripts/stack.sh reset

# The OLTP schema, a streaming_deploy run triggered through the scheduler (waited for), then load and the
# report, which ends with the Airflow UI address and login.
demo: up
	@$(ENV) $(PY) -m lakehouse.dev.demo prepare
	@$(ENV) $(PY) -m lakehouse.dev.demo deploy
	@$(ENV) $(PY) -m lakehouse.dev.demo run

lint: install-python
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)

# Rewrites files: the safe fixes of `ruff check`, then `ruff format`.
format: install-python
	$(PY) -m ruff check --fix $(LINT_PATHS)
	$(PY) -m ruff format $(LINT_PATHS)

test-unit: install-python
	$(ENV) $(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

test-integration: up
	$(ENV) $(PY) -m pytest tests/integration -q $(PYTEST_ARGS)

# In this order (make runs prerequisites left to right): everything installed first (apt, pip, mvn),
# then lint, unit and integration tests; the first failure stops the run.
test: install lint test-unit test-integration

# Rebuild constraints.txt from requirements.txt and requirements-dev.txt in a throw-away venv.
lock:
	rm -rf /tmp/lakehouse-lock && python3.11 -m venv /tmp/lakehouse-lock
	/tmp/lakehouse-lock/bin/pip install -q -r requirements.txt -r requirements-dev.txt
	{ echo "# pip freeze of a working .venv built from requirements.txt (Python 3.11). Regenerate with 'make lock'."; \
	  /tmp/lakehouse-lock/bin/pip freeze; } > constraints.txt

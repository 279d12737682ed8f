# Streaming lakehouse: the two commands of the README's Quick start are `make demo` and `make test`.
SHELL := /bin/bash
ENV := source scripts/env.sh &&
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: help install jars up down status reset demo test test-unit test-integration lock bench-freshness

help:
	@echo "make demo        install what is missing, start the stack, run MySQL -> Paimon ODS end to end"
	@echo "make test        unit tests, then integration tests on the real stack (started if needed)"
	@echo "make up|down|status|reset   local stack: MariaDB, Flink session cluster + SQL Gateway, Airflow home"
	@echo "make install     Python env, Flink distribution, connector jars, mariadb-server"

install:
	bash scripts/install.sh

jars: install

up: install
	bash scripts/stack.sh up

down:
	bash scripts/stack.sh down

status:
	bash scripts/stack.sh status

# Stops everything and deletes all local data (MariaDB, warehouse, checkpoints, Airflow home).
reset:
	bash scripts/stack.sh reset

demo: up
	$(ENV) $(PY) -m lakehouse.dev.demo prepare
	$(ENV) .venv/bin/airflow dags test streaming_deploy > $${LAKEHOUSE_HOME}/logs/demo-dags-test.log 2>&1 \
	  || { tail -40 $${LAKEHOUSE_HOME}/logs/demo-dags-test.log; echo "airflow dags test streaming_deploy failed; full log: .stack/logs/demo-dags-test.log"; exit 1; }
	$(ENV) $(PY) -m lakehouse.dev.demo run

test-unit: install
	$(ENV) $(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

test-integration: up
	$(ENV) $(PY) -m pytest tests/integration -q $(PYTEST_ARGS)

test: test-unit test-integration

# Rebuild constraints.txt from requirements.txt in a throw-away venv.
lock:
	rm -rf /tmp/lakehouse-lock && python3.11 -m venv /tmp/lakehouse-lock
	/tmp/lakehouse-lock/bin/pip install -q -r requirements.txt
	{ echo "# pip freeze of a working .venv built from requirements.txt (Python 3.11). Regenerate with 'make lock'."; \
	  /tmp/lakehouse-lock/bin/pip freeze; } > constraints.txt

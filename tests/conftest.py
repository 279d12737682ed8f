"""Shared test setup: the package on sys.path and an Airflow home that never touches the user's."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
# Always a throw-away Airflow home with its own SQLite database, even when scripts/env.sh (sourced by
# `make test`) points AIRFLOW_HOME and AIRFLOW__DATABASE__SQL_ALCHEMY_CONN at the stack's: runs the tests
# create (`airflow dags test` in the integration tests) must never land in the user's Airflow, whose
# scheduler would then skip its own runs on those logical dates. The integration tests migrate it
# once (tests/integration/helpers.py, airflow_cli).
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-test-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC", None)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
